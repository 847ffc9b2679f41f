"""Dispatch to the simulated bank, and the outbox honouring a provider's Retry-After."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import sqlalchemy as sa

from lifeloop.data.simulator import simulate
from lifeloop.execution.channels.base import Capabilities, Result
from lifeloop.execution.channels.simulator import SimulatorChannel, contacts_table
from lifeloop.execution.closed_loop import deliver
from lifeloop.execution.dispatch import drain, enqueue_lists
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Dispatch
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

# the drain's clock; the outbox stamps items with the real time when they are enqueued, so T0 must lie
# after every enqueue of the run: the module is imported when the suite is collected, minutes before
# these tests run in a full `make test`
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=6)


def lists(as_of, treated, controls):
    rows = [dict(as_of=as_of, customer_id=c, strategy="honeymoon_welcome", wave="d1_sms", group=g, status=s,
                 channel="sms", send_at=None, purpose="marketing", script_id="honeymoon_welcome.sms",
                 script_key=None, offer="WM090", priority=80, rm_id=None)
            for cs, g, s in ((treated, "treated", "contact"), (controls, "control", "control")) for c in cs]
    return pa.Table.from_pylist(rows)


def test_contacts_and_controls_reach_the_simulated_bank_once_each_and_advance_it_a_day(ops_db, tmp_path):
    bank = tmp_path / "extracts"
    sim = simulate(bank, customers=200, days=40, seed=3)
    treated = [f"C{i:09d}" for i in range(1, 21)]
    controls = [f"C{i:09d}" for i in range(21, 26)]
    channel = SimulatorChannel("sms", bank)
    day = lists(sim.as_of, treated, controls)
    enqueue_lists(ops_db, day, adapters={"sms": channel})
    enqueue_lists(ops_db, day, adapters={"sms": channel})        # a re-run tells the bank nothing new
    baseline = {(c, "marketing", "sms"): True for c in treated}
    summary = drain(ops_db, {"sms": channel}, baseline=baseline, clock=lambda: T0)
    assert summary.sent == 20
    channel.send([])                                              # nothing to send changes nothing
    table = contacts_table(bank)
    assert table.num_rows == 25
    assert sorted(table.filter(pa.compute.invert(table["treated"]))["customer_id"].to_pylist()) == controls
    result, _ = deliver(bank)
    assert result.date == sim.as_of + dt.timedelta(days=1) and result.contacts == 25
    assert contacts_table(bank).num_rows == 0                     # the inbox was filed away


def test_a_simulator_channel_with_a_worklist_also_gives_each_rm_contact_to_the_customers_rm_once(ops_db, tmp_path):
    """The demo's ``rm`` channel: the call reaches the simulated bank and the RM's worklist, once each (a re-run
    and a resent batch add nothing); a contact whose customer has no RM reaches the bank and makes no task."""
    from lifeloop.execution.channels.worklist import WorklistChannel
    from lifeloop.store.ops import tasks as tasks_store

    bank = tmp_path / "extracts"
    sim = simulate(bank, customers=200, days=40, seed=3)
    day = lists(sim.as_of, [f"C{i:09d}" for i in range(1, 6)], [f"C{i:09d}" for i in range(6, 8)])
    day = day.set_column(day.column_names.index("channel"), "channel", pa.array(["rm"] * day.num_rows))
    day = day.set_column(day.column_names.index("rm_id"), "rm_id",
                         pa.array(["RM7", "RM7", "RM8", None, "RM7", "RM7", "RM8"], pa.string()))
    channel = SimulatorChannel("rm", bank, tasks=WorklistChannel("rm", ops_db, due_in_days=3))
    enqueue_lists(ops_db, day, adapters={"rm": channel})
    enqueue_lists(ops_db, day, adapters={"rm": channel})
    summary = drain(ops_db, {"rm": channel}, baseline={(f"C{i:09d}", "marketing", "rm"): True for i in range(1, 6)},
                    clock=lambda: T0)
    assert summary.sent == 5
    table = contacts_table(bank)
    assert table.num_rows == 7 and int(pa.compute.sum(table["treated"]).as_py()) == 5   # 5 calls, 2 controls
    with unit_of_work(ops_db) as session:
        seven = [r.customer_id for r in tasks_store.worklist(session, rm_id="RM7")]
        eight = [r.customer_id for r in tasks_store.worklist(session, rm_id="RM8")]
        assert sorted(seven) == ["C000000001", "C000000002", "C000000005"] and eight == ["C000000003"]
        assert sum(tasks_store.open_by_rm(session).values()) == 4        # C000000004 has no RM: no task
        due = {r.due_on for r in tasks_store.worklist(session, rm_id="RM7")}
    assert due == {sim.as_of + dt.timedelta(days=3)}


class Busy:
    """A provider that always answers 429 with a Retry-After of two hours."""

    name, capabilities = "sms", Capabilities()

    def send(self, batch):
        return [Result.failed(m, "HTTP 429: slow down", retryable=True, retry_after=dt.timedelta(hours=2))
                for m in batch]

    def close(self):
        pass


def test_a_429s_retry_after_longer_than_the_backoff_decides_when_the_outbox_tries_again(ops_db):
    enqueue_lists(ops_db, lists(dt.date(2024, 3, 1), ["C001"], []))
    summary = drain(ops_db, {"sms": Busy()}, baseline={("C001", "marketing", "sms"): True}, clock=lambda: T0)
    assert summary.retrying == 1
    with unit_of_work(ops_db) as s:
        item = s.scalars(sa.select(Dispatch)).one()
    assert (item.status, item.attempts, item.last_error) == ("pending", 1, "HTTP 429: slow down")
    assert item.next_attempt_at == T0 + dt.timedelta(hours=2)
    # not due an hour later; due after two
    assert drain(ops_db, {"sms": Busy()}, clock=lambda: T0 + dt.timedelta(hours=1)).retrying == 0
