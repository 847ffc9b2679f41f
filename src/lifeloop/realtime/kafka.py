"""An Apache Kafka event source (confluent-kafka, the ``[kafka]`` extra): at least once from the topic, once in effect.

:class:`KafkaSource` implements :class:`lifeloop.realtime.sources.EventSource` over a consumer group with
automatic offset commits off (``enable.auto.commit: false``, ``enable.auto.offset.store: false``):

1. ``poll`` consumes up to a batch of messages; each message's value is one event as JSON (UTF-8). A value that
   is not a JSON object is handed on as a bad message, named by topic, partition and offset.
2. :func:`lifeloop.realtime.sources.pump` stores the batch (validated, once per ``event_id``, committed),
   decides it, and only then calls ``commit``, which commits, synchronously, every partition's next offset
   after the batch's messages. A crash anywhere before that re-delivers the batch to the group: intake answers
   "duplicate" for what was stored and the decider's unique keys make the redo change nothing.
3. A bad message (not JSON, not an event, an invalid field) is not stored: it gets an audit record
   (``events.bad_message``, target ``topic/partition/offset``, the problem, the value's SHA-256 and size — never
   the value, which may hold personal data) in the same transaction as the batch's good events, and its offset
   is committed with them, so it never blocks its partition. The message itself stays in the topic for its
   retention time: the audit record says where to read it again.

``confluent_kafka`` is imported only when a source is opened.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from lifeloop.config.events import KafkaSettings
from lifeloop.errors import LifeloopError
from lifeloop.realtime.sources import Polled
from lifeloop.store.ops import audit
from lifeloop.store.ops.database import unit_of_work

KAFKA_HINT = "install the Kafka extra: pip install 'lifeloop[kafka]' (confluent-kafka)"


class KafkaError(LifeloopError):
    """The Kafka client or broker refused or failed (not a bad event: those are skipped with an audit record)."""


def consumer_config(settings: KafkaSettings) -> dict[str, Any]:
    """librdkafka settings of the source: manual commits after the decision, no offset stored automatically."""
    return {"bootstrap.servers": settings.bootstrap_servers, "group.id": settings.group_id,
            "auto.offset.reset": settings.auto_offset_reset, "enable.auto.commit": False,
            "enable.auto.offset.store": False, "client.id": settings.client_id,
            "security.protocol": settings.security_protocol, "session.timeout.ms": settings.session_timeout_ms,
            **settings.options}


def where(topic: str, partition: int, offset: int) -> str:
    """A message's place: ``topic/partition/offset``."""
    return f"{topic}/{partition}/{offset}"


class KafkaSource:
    """A Kafka topic read by a consumer group; offsets committed only when :meth:`commit` is told to."""

    def __init__(self, settings: KafkaSettings, name: str, *, consumer: Any = None):
        self.settings = settings
        self.name = name
        if consumer is None:
            try:
                import confluent_kafka
            except ImportError:
                raise KafkaError("the Kafka event source needs the confluent-kafka client, which is not installed",
                                 hint=KAFKA_HINT) from None
            try:
                consumer = confluent_kafka.Consumer(consumer_config(settings))
            except confluent_kafka.KafkaException as exc:
                raise KafkaError(f"source {name}: the Kafka consumer cannot start: {exc}",
                                 hint="check the source's kafka settings in config/events.yaml") from None
            consumer.subscribe([settings.topic])
        self.consumer = consumer
        self._next: dict[tuple[str, int], int] = {}   # polled, not yet committed: partition -> next offset

    def poll(self, max_events: int) -> list[Polled]:
        """Up to ``max_events`` messages (waiting at most ``poll_seconds`` for the first); bad ones flagged."""
        out: list[Polled] = []
        for m in self.consumer.consume(num_messages=max_events, timeout=self.settings.poll_seconds):
            err = m.error()
            if err is not None:
                if err.fatal() or (not err.retriable() and err.code() != _partition_eof()):
                    raise KafkaError(f"source {self.name}: Kafka error: {err.str()}",
                                     hint="check the broker and the topic named in config/events.yaml")
                continue   # informational (end of partition) or retried by the client
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            self._next[(topic, partition)] = offset + 1
            place = where(topic, partition, offset)
            raw, problem = decode(m.value())
            out.append(Polled(raw, (topic, partition, offset), where=place, problem=problem,
                              value=m.value() or b""))
        return out

    def commit(self, position: Any = None) -> None:
        """Commit every partition's next offset after the messages polled so far (synchronously: when this
        returns, the group's committed offsets are on the broker)."""
        if not self._next:
            return
        import confluent_kafka

        offsets = [confluent_kafka.TopicPartition(t, p, o) for (t, p), o in sorted(self._next.items())]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            # not committed: the batch comes again after a restart and changes nothing (idempotent intake)
            raise KafkaError(f"source {self.name}: committing offsets failed: {exc}",
                             hint="the events are stored and decided; a restart re-reads them as duplicates") from None
        self._next.clear()

    def assigned(self) -> bool:
        """Whether the group has given this consumer partitions yet."""
        return bool(self.consumer.assignment())

    def committed(self) -> dict[tuple[str, int], int]:
        """The group's committed offsets of the partitions this consumer has (for ``lifeloop events consume``)."""
        assigned = self.consumer.assignment()
        if not assigned:
            return {}
        return {(tp.topic, tp.partition): tp.offset for tp in self.consumer.committed(assigned, timeout=10)}

    def close(self) -> None:
        self.consumer.close()


def _partition_eof() -> int:
    import confluent_kafka

    return confluent_kafka.KafkaError._PARTITION_EOF


def decode(value: bytes | None) -> tuple[Any, str | None]:
    """A message value as an event (a JSON object), or None and what is wrong with it."""
    if value is None:
        return None, "the message has no value (a tombstone), not an event"
    try:
        raw = json.loads(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(raw, Mapping):
        return None, "an event must be a JSON object"
    return raw, None


BAD_MESSAGE = "events.bad_message"


def record_bad(sessions: Any, source: str, bad: Sequence[tuple[Polled, str]]) -> int:
    """An audit record per bad message (once per place: a re-delivered one is not recorded twice), committed;
    returns how many were new. The value is not kept (it may hold personal data): its SHA-256 and size are."""
    new = 0
    with unit_of_work(sessions) as session:
        for p, problem in bad:
            if audit.entries(session, target_type="event_message", target_id=p.where):
                continue
            topic, partition, offset = p.position
            audit.record(session, actor=f"source:{source}", action=BAD_MESSAGE, target_type="event_message",
                         target_id=p.where, reason=problem[:500], result="refused",
                         details={"source": source, "topic": topic, "partition": partition, "offset": offset,
                                  "sha256": hashlib.sha256(p.value).hexdigest(), "bytes": len(p.value)})
            new += 1
    return new
