"""The customer's rights at send time (SQLite and PostgreSQL), checked on what a recording gateway received.

The plan ran first; the customer opted out of personalised marketing afterwards, or turned out to be a purged
person back in a later batch: the send-time gate still stops the contact.
"""

from __future__ import annotations

import pyarrow as pa
import sqlalchemy as sa

from lifeloop.execution.dispatch import drain, enqueue_lists
from lifeloop.store.ops import rights
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Dispatch, MarketingSuppressed
from lifeloop.strategy.plan import output_schema
from tests.gate_world import POLICY, TZ, Clock, D, RecordingGateway, consenting, local, row
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures


def enqueue(sessions, rows, now, non_personalised=()):
    return enqueue_lists(sessions, pa.Table.from_pylist(rows, schema=output_schema()), timezone=TZ, policy=POLICY,
                         now=now, non_personalised=non_personalised)


def drain_all(sessions, gateway, clock, customers, baseline=None):
    return drain(sessions, gateway.adapters(), baseline=baseline or consenting(customers), policy=POLICY, timezone=TZ,
                 clock=clock)


def blocked(sessions) -> dict[tuple[str, str], str]:
    with sessions() as s:
        return {(d.customer_id, d.strategy_id): d.blocked_reason
                for d in s.scalars(sa.select(Dispatch).where(Dispatch.status == "blocked"))}


def test_an_opt_out_recorded_after_the_plan_stops_personalised_contacts_and_lets_a_non_personalised_one_go(ops_db):
    clock = Clock(local(D, 9))
    # the plan's lists, as dispatch enqueues them: two strategies for C1, one for C2; 'notice' is non-personalised
    enqueue(ops_db, [row("C1", "wealth_upsell", "w1", "sms"), row("C1", "notice", "w1", "push"),
                     row("C2", "wealth_upsell", "w1", "sms")], clock(), non_personalised={"notice"})
    with unit_of_work(ops_db) as s:   # between the plan and the send: C1 opts out in the app
        rights.set_personalisation(s, customer_id="C1", opted_out=True, source="app", reason="no recommendations",
                                   actor="app", at=local(D, 9, 30))
    gateway = RecordingGateway(clock)
    clock.now = local(D, 10, 5)
    summary = drain_all(ops_db, gateway, clock, ["C1", "C2"])
    assert sorted((d.customer_id, d.strategy) for d in gateway.delivered) == [("C1", "notice"), ("C2", "wealth_upsell")]
    assert summary.blocked == 1
    reason = blocked(ops_db)[("C1", "wealth_upsell")]
    assert reason.startswith("at dispatch: opted out of personalised marketing") and "PIPL Art. 24" in reason


def test_an_outbox_item_that_does_not_say_whether_it_is_personalised_counts_as_personalised(ops_db):
    clock = Clock(local(D, 9))
    enqueue(ops_db, [row("C1", "old", "w1", "sms")], clock())
    with unit_of_work(ops_db) as s:
        item = s.scalars(sa.select(Dispatch)).one()
        item.payload = {k: v for k, v in item.payload.items() if k != "personalised"}   # written before this field
        rights.set_personalisation(s, customer_id="C1", opted_out=True, source="rm", reason="asked", actor="rm1",
                                   at=local(D, 9))
    gateway = RecordingGateway(clock)
    clock.now = local(D, 10, 5)
    drain_all(ops_db, gateway, clock, ["C1"])
    assert gateway.delivered == [] and ("C1", "old") in blocked(ops_db)


def test_a_suppressed_customer_gets_no_marketing_but_a_service_message_still_goes(ops_db):
    clock = Clock(local(D, 9))
    enqueue(ops_db, [row("C7", "promo", "w1", "sms"), row("C7", "maturity", "w1", "sms", purpose="service")],
            clock(), non_personalised={"promo", "maturity"})
    with unit_of_work(ops_db) as s:
        s.add(MarketingSuppressed(customer_id="C7", matched_on="mobile", batch_as_of=D))
    gateway = RecordingGateway(clock)
    clock.now = local(D, 10, 5)
    drain_all(ops_db, gateway, clock, ["C7"])
    assert [(d.customer_id, d.strategy, d.purpose) for d in gateway.delivered] == [("C7", "maturity", "service")]
    assert "no marketing (PIPL Art. 47)" in blocked(ops_db)[("C7", "promo")]


def test_without_any_flag_every_contact_goes_out(ops_db):
    clock = Clock(local(D, 9))
    enqueue(ops_db, [row("C1", "wealth_upsell", "w1", "sms"), row("C2", "notice", "w1", "push")], clock())
    gateway = RecordingGateway(clock)
    clock.now = local(D, 10, 5)
    drain_all(ops_db, gateway, clock, ["C1", "C2"], baseline=consenting(["C1", "C2"]))
    assert sorted(d.customer_id for d in gateway.delivered) == ["C1", "C2"]
