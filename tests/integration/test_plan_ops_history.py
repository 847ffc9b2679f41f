"""The plan reads its history from the ops database: outcomes steer later waves, consent changes,
do-not-disturb and refusals apply, control groups still come from the lake."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest

from lifeloop.strategy.ops_history import OpsHistory
from tests.integration.test_plan import D2, D, ctx, publish_insight  # noqa: F401  (the tiny lake fixture)

UTC = dt.UTC


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)


@pytest.fixture()
def ops(tmp_path):
    from lifeloop.store.ops import open_ops

    return open_ops(f"sqlite:///{tmp_path / 'ops.db'}")


def run(ctx, day):  # noqa: F811
    ctx.run(day, ["audiences", "plan"])
    read = lambda area: pq.read_table(ctx.lake.snapshot_dir(area, day) / f"{area}.parquet").to_pylist()  # noqa: E731
    return read("audiences"), read("lists")


def test_the_second_wave_skips_a_customer_who_responded_and_ops_consent_and_dnd_apply(ctx, ops):  # noqa: F811
    from lifeloop.store.ops.models import ConsentChange, Dispatch, DoNotDisturb, Feedback

    run(ctx, D)  # C1 contacted (w1 sms), C3 control, C2 dropped (consent), C4 dropped (day cap)
    with ops() as s:
        d = Dispatch(idempotency_key="k1", as_of=D, customer_id="C1", strategy_id="welcome", wave="w1", channel="sms",
                     status="sent")
        s.add(d)
        s.flush()
        s.add(Feedback(dispatch_id=d.id, customer_id="C1", channel="sms", outcome="interested", occurred_at=at(D, 15),
                       recorded_by="rm1"))
        s.add(ConsentChange(customer_id="C2", purpose="marketing", channel="*", granted=True,
                            effective_at=at(D + dt.timedelta(days=2)), source="customer", recorded_by="branch"))
        s.add(DoNotDisturb(customer_id="C4", channel=None, reason="complaint", starts_at=at(D2 - dt.timedelta(days=1)),
                           created_by="cc"))
        s.commit()
    ctx.history_source = lambda: OpsHistory(ops, ctx.lake)
    publish_insight(ctx.lake, D2)
    aud, lists = run(ctx, D2)
    assert [(r["wave"], r["customer_id"], r["reason"]) for r in aud] == [
        ("w1", "C2", "digital_share_90d=0.2500, stage=honeymoon"),
        ("w1", "C4", "digital_share_90d=0.2500, stage=honeymoon"),
        ("w2", "C3", "wave w1 on 2024-06-30: control"),          # C1 responded: no second wave
    ]
    assert [(r["wave"], r["customer_id"], r["status"], r["channel"], r["dropped_by"]) for r in lists] == [
        ("w1", "C2", "contact", "sms", None),       # consent granted since, on every channel
        ("w1", "C4", "dropped", None, "dnd"),
        ("w2", "C3", "control", "rm", None),
    ]


def test_ops_history_turns_refusals_and_lifted_dnd_into_dated_rows(ctx, ops):  # noqa: F811
    from lifeloop.store.ops.models import Dispatch, DoNotDisturb, Feedback

    with ops() as s:
        d = Dispatch(idempotency_key="k2", as_of=D - dt.timedelta(days=3), customer_id="C6", strategy_id="x", wave="w",
                     channel="call", status="sent")
        gone = Dispatch(idempotency_key="k3", as_of=D - dt.timedelta(days=2), customer_id="C6", strategy_id="x",
                        wave="w", channel="sms", status="cancelled")
        s.add_all([d, gone])
        s.flush()
        s.add(Feedback(dispatch_id=d.id, customer_id="C6", channel="call", outcome="refused",
                       occurred_at=at(D - dt.timedelta(days=3), 11), recorded_by="cc"))
        s.add(DoNotDisturb(customer_id="C5", channel="sms", reason="asked", starts_at=at(D - dt.timedelta(days=10)),
                           lifted_at=at(D - dt.timedelta(days=1), 0), created_by="cc", lifted_by="cc"))
        s.commit()
    h = OpsHistory(ops, ctx.lake).load(D, 400)
    assert h.contacts.to_pylist() == [dict(customer_id="C6", strategy="x", wave="w", channel="call",
                                           contact_date=D - dt.timedelta(days=3), treated=True, outcome="refused")]
    assert h.refusals.to_pylist() == [dict(customer_id="C6", channel="call", refused_on=D - dt.timedelta(days=3))]
    # lifted at midnight starting D-1: in force up to D-2
    assert h.dnd.to_pylist() == [dict(customer_id="C5", channel="sms", start_date=D - dt.timedelta(days=10),
                                      end_date=D - dt.timedelta(days=2))]
    assert h.consent.num_rows == 8  # the bank's consent rows (C1 2, C3 3, C4 2, C6 1), unchanged
