"""The Kafka event source against a Kafka-protocol broker on 127.0.0.1: librdkafka's mock cluster
(``test.mock.num.brokers``), which speaks the Kafka protocol over TCP — no Kafka broker can be installed here
from PyPI, Debian or npm. Checked: consumption stores and decides; offsets are committed only once the batch is
stored and decided; a crash between the decision and the commit re-delivers the batch and changes nothing; a bad
message is named (topic/partition/offset) in the audit log, not stored, and does not block its partition."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from lifeloop.realtime import kafka as event_kafka
from lifeloop.store.ops import audit
from lifeloop.store.ops.models import Event, Moment, MomentDecision
from tests.ops_fixtures import database_url  # noqa: F401 - fixture
from tests.realtime_world import CUSTOMERS, EVENTS, Clock, D, RecordingGateway, local, make_world, salary

pytestmark = pytest.mark.slow   # a consumer group's first join takes seconds

# SQLite only: what the database does under a source — store once, decide, then commit; a crash before the commit
# re-reads and changes nothing — is the same code (realtime.sources.pump) for every source, and
# test_realtime_sources.py runs it on SQLite and PostgreSQL (test_ops_audit_chain.py the audit log on both); what
# is Kafka's own here (offsets, the group, bad messages named by topic/partition/offset) does not depend on the
# database. One database saves a minute and a half of the suite's waiting for consumer groups.
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# The tests on a broker wait on consumer groups (about a minute each): `make validate`, not `make test`
# (docs/performance.md "Test suite"). The settings check at the end needs no broker and stays in `make test`.
BROKER = pytest.mark.validate


class Crash(Exception):
    pass


@pytest.fixture
def kafka_cluster():
    """A one-broker mock cluster on 127.0.0.1, alive while its handle is; yields its bootstrap servers."""
    import confluent_kafka

    handle = confluent_kafka.Producer({"test.mock.num.brokers": 1, "log_level": 3})
    brokers = handle.list_topics(timeout=10).brokers.values()
    yield ",".join(f"{b.host}:{b.port}" for b in brokers)
    handle.flush(5)


def produce(servers: str, topic: str, values: list[bytes | None], *, partition: int | None = None,
            keys: list[str] | None = None) -> dict[int, int]:
    """Produce and wait; returns partition -> the next offset after what was written there."""
    import confluent_kafka

    producer = confluent_kafka.Producer({"bootstrap.servers": servers, "log_level": 3})
    ends: dict[int, int] = {}

    def delivered(err, msg):
        assert err is None, err
        ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)

    for i, value in enumerate(values):
        extra = {"partition": partition} if partition is not None else {}
        producer.produce(topic, value=value, key=keys[i] if keys else None, on_delivery=delivered, **extra)
    assert producer.flush(30) == 0
    return ends


def committed(servers: str, topic: str, group: str, partitions: list[int]) -> dict[int, int]:
    """The group's committed offsets (-1001: none) as the broker has them."""
    import confluent_kafka

    c = confluent_kafka.Consumer({"bootstrap.servers": servers, "group.id": group, "log_level": 3})
    try:
        got = c.committed([confluent_kafka.TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


def world(tmp_path, database_url, monkeypatch, servers: str, topic: str, group: str):
    events = EVENTS + (f"sources:\n  - name: cards\n    kafka: {{bootstrap_servers: '{servers}', topic: {topic}, "
                       f"group_id: {group}, batch: 4, poll_seconds: 0.5, options: {{log_level: 3}}}}\n")
    return make_world(tmp_path, database_url, monkeypatch, events=events)


def count(ctx, model) -> int:
    with ctx.ops()() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model))


@BROKER
@ONE_DATABASE
def test_kafka_events_are_stored_decided_and_committed_only_after_the_decision(tmp_path, database_url, monkeypatch,
                                                                                kafka_cluster):
    topic, group = f"t{uuid.uuid4().hex[:8]}", "lifeloop"
    ends = produce(kafka_cluster, topic, [json.dumps(salary(c, c, local(D, 9, i))).encode()
                                          for i, c in enumerate(CUSTOMERS)], keys=CUSTOMERS)
    ctx = world(tmp_path, database_url, monkeypatch, kafka_cluster, topic, group)
    clock = Clock(local(D, 10))
    gateway = RecordingGateway(clock)
    at_commit: list[tuple[int, int, int]] = []   # (offsets to commit, events stored, events decided) at each commit
    real_commit = event_kafka.KafkaSource.commit

    def watched(self, position=None):
        with ctx.ops()() as s:
            stored = s.scalar(sa.select(sa.func.count()).select_from(Event))
            decided = s.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.decided_at.is_not(None)))
        at_commit.append((sum(self._next.values()), stored, decided))
        real_commit(self, position)

    monkeypatch.setattr(event_kafka.KafkaSource, "commit", watched)
    pumped, summary = ctx.consume_events("cards", idle_polls=12, clock=clock, adapters=gateway.adapters())
    assert (pumped.accepted, pumped.duplicates, pumped.skipped) == (9, 0, 0)
    assert (summary.events, summary.moments) == (9, 9)
    # every commit came after the messages it covers were stored and decided (offsets here = messages so far)
    assert at_commit and all(n <= stored == decided for n, stored, decided in at_commit)
    assert committed(kafka_cluster, topic, group, sorted(ends)) == ends
    assert count(ctx, MomentDecision) == 9
    # salary_care: C001..C006, C008, C009 are in its audience, control by the batch hash; C008 refused at the gate
    treated = {d.customer_id for d in gateway.delivered}
    with ctx.ops()() as s:
        want = set(s.scalars(sa.select(MomentDecision.customer_id).where(MomentDecision.outcome == "treated")))
    assert treated == want - {"C008"} and "C007" not in treated
    ctx.close()


@BROKER
@ONE_DATABASE
def test_a_crash_between_the_decision_and_the_commit_re_delivers_and_changes_nothing(tmp_path, database_url,
                                                                                     monkeypatch, kafka_cluster):
    topic, group = f"t{uuid.uuid4().hex[:8]}", "lifeloop"
    produce(kafka_cluster, topic, [json.dumps(salary(c, c, local(D, 9, i))).encode()
                                   for i, c in enumerate(CUSTOMERS)], partition=0)
    ctx = world(tmp_path, database_url, monkeypatch, kafka_cluster, topic, group)
    clock = Clock(local(D, 10))
    gateway = RecordingGateway(clock)
    real_commit = event_kafka.KafkaSource.commit

    def crash(self, position=None):
        raise Crash("the process died after deciding the first batch, before committing its offsets")

    monkeypatch.setattr(event_kafka.KafkaSource, "commit", crash)
    with pytest.raises(Crash):
        ctx.consume_events("cards", idle_polls=12, clock=clock, adapters=gateway.adapters())
    assert committed(kafka_cluster, topic, group, [0]) == {0: -1001}   # nothing committed
    stored, moments, decisions = count(ctx, Event), count(ctx, Moment), count(ctx, MomentDecision)
    sent = sorted(d.customer_id for d in gateway.delivered)
    assert 1 <= stored <= 4 and moments == stored and decisions == stored and sent   # the first batch: decided, sent

    monkeypatch.setattr(event_kafka.KafkaSource, "commit", real_commit)
    again, summary = ctx.consume_events("cards", idle_polls=12, clock=clock, adapters=gateway.adapters())
    assert (again.accepted, again.duplicates) == (9 - stored, stored)   # the re-delivered first batch: duplicates
    assert committed(kafka_cluster, topic, group, [0]) == {0: 9}
    assert count(ctx, Event) == 9 and count(ctx, Moment) == 9 and count(ctx, MomentDecision) == 9
    delivered = [d.customer_id for d in gateway.delivered]
    assert len(delivered) == len(set(delivered)) and set(sent) <= set(delivered)   # nobody contacted twice
    ctx.close()


@BROKER
@ONE_DATABASE
def test_a_bad_message_is_named_in_the_audit_log_not_stored_and_does_not_block_its_partition(
        tmp_path, database_url, monkeypatch, kafka_cluster):
    topic, group = f"t{uuid.uuid4().hex[:8]}", "lifeloop"
    bad_amount = salary("b2", "C002", local(D, 9, 2)) | {"amount": "-5.00"}
    values = [json.dumps(salary("g0", "C001", local(D, 9, 0))).encode(), b"{not json", json.dumps(bad_amount).encode(),
              None, json.dumps(salary("g4", "C003", local(D, 9, 4))).encode()]
    produce(kafka_cluster, topic, values, partition=0)
    ctx = world(tmp_path, database_url, monkeypatch, kafka_cluster, topic, group)
    clock = Clock(local(D, 10))
    gateway = RecordingGateway(clock)
    pumped, summary = ctx.consume_events("cards", idle_polls=12, clock=clock, adapters=gateway.adapters())
    assert (pumped.accepted, pumped.skipped) == (2, 3)
    with ctx.ops()() as s:
        assert sorted(s.scalars(sa.select(Event.event_id))) == ["sal-g0", "sal-g4"]
        bad = audit.entries(s, target_type="event_message")
        assert [(e.target_id, e.action, e.result) for e in bad] == [
            (f"{topic}/0/{i}", "events.bad_message", "refused") for i in (1, 2, 3)]
        assert "not JSON" in bad[0].reason and "amount" in bad[1].reason and "tombstone" in bad[2].reason
        assert bad[1].details["bytes"] == len(values[2]) and "C002" not in json.dumps(bad[1].details)
        assert not audit.verify(s).breaks
    assert committed(kafka_cluster, topic, group, [0]) == {0: 5}   # past the bad ones: the partition goes on
    assert summary.moments == 2
    ctx.close()
    if "sqlite" not in database_url:
        return
    # the command, in another process: the group goes on from its committed offset (the bad ones not again)
    import subprocess
    import sys

    produce(kafka_cluster, topic, [json.dumps(salary("g5", "C004", local(D, 9, 5))).encode()], partition=0)
    cli = [sys.executable, "-m", "lifeloop.cli", "-w", str(tmp_path / "ws"), "events", "consume", "--source", "cards",
           "--idle-stop", "6"]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "kafka source cards: 1 batches, 1 events stored, 0 duplicates, 0 bad messages skipped" in done.stdout
    assert committed(kafka_cluster, topic, group, [0]) == {0: 6}
    with ctx.ops()() as s:
        assert len(audit.entries(s, target_type="event_message")) == 3


def test_kafka_settings_are_checked_with_the_field_named(tmp_path, monkeypatch):
    from lifeloop.config.events import EventsConfig

    good = {"name": "cards", "kafka": {"bootstrap_servers": "k1:9092,k2:9092", "topic": "card-events",
                                       "group_id": "lifeloop"}}
    assert EventsConfig(sources=[good]).sources[0].kafka.batch == 500
    for kafka, words in [({"bootstrap_servers": "k1"}, "host:port"), ({"topic": "a b"}, "not a Kafka name"),
                         ({"options": {"enable.auto.commit": True}}, "Lifeloop sets it"),
                         ({"options": {"sasl.password": "x"}}, "password"), ({"batch": 0}, "greater than"),
                         ({"extra": 1}, "Extra inputs")]:
        with pytest.raises(ValueError, match=words):
            EventsConfig(sources=[{"name": "cards", "kafka": {**good["kafka"], **kafka}}])
    with pytest.raises(ValueError, match="needs token_sha256"):
        EventsConfig(sources=[{"name": "cards"}])
