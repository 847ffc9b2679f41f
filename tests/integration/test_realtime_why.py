"""``lifeloop why CUSTOMER --as-of D`` explains the day's real-time decisions from the operations database: the
moment and the event that made it fire, the outcome and its reason, and what became of the contact (sent, blocked
at the gate, control). SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from rich.console import Console

from lifeloop.cli.why import print_why
from lifeloop.strategy.holdout import is_control
from tests.ops_fixtures import database_url  # noqa: F401 - fixture
from tests.realtime_world import CUSTOMERS, Clock, D, RecordingGateway, local, make_world, salary


def test_why_explains_the_days_real_time_decisions_and_their_contacts(tmp_path, database_url, monkeypatch):
    ctx = make_world(tmp_path, database_url, monkeypatch)
    clock = Clock(local(D, 10, 0))
    gateway = RecordingGateway(clock)
    ctx.accept_events([salary(c, c, local(D, 9, 58)) for c in CUSTOMERS], source="core")
    decider = ctx.decider(clock=clock, adapters=gateway.adapters())
    decider.run_until_idle()
    decider.close()
    control = {c for c in CUSTOMERS if is_control(c, "salary_care", "lifeloop", 0.3)}
    treated = next(c for c in CUSTOMERS if c not in control | {"C007", "C008"})
    held = next(c for c in sorted(control) if c != "C007")

    report = ctx.why(treated, D)
    assert report["planned"] is False and report["decisions"] == []     # no batch plan that day: real-time only
    [r] = report["realtime"]
    assert (r["moment"], r["event_id"], r["event_kind"], r["strategy"], r["outcome"]) == \
        ("salary_credited", f"sal-{treated}", "transaction", "salary_care", "treated")
    assert r["occurred_at"] == local(D, 9, 58).isoformat()
    # amounts are banded for a viewer who does not see money exactly (the OS user's administrator role)
    assert report["access"]["money"] == "banded"
    assert r["moment_reason"] == "salary credited: 1k-10k" and "8,000.00" not in r["reason"]
    assert r["reason"].endswith("treated")
    assert r["delivery"] == "sent" and r["decision"].startswith("sent by sms at ")
    assert [d.customer_id for d in gateway.delivered].count(treated) == 1

    r = ctx.why(held, D)["realtime"][0]
    assert (r["outcome"], r["delivery"]) == ("control", "cancelled")
    assert r["decision"] == "control group: recorded, never sent"
    if "C008" not in control:
        r = ctx.why("C008", D)["realtime"][0]
        assert r["delivery"] == "blocked" and "consent" in r["decision"]
    r = ctx.why("C007", D)["realtime"][0]
    assert (r["outcome"], r["dispatch_key"], r["decision"]) == ("not_in_audience", None, "no contact")
    assert "audience rule false on the snapshot of 2026-03-02" in r["reason"]

    # the next day holds none of them; a day with neither a plan nor a real-time decision is still an error
    try:
        ctx.why(treated, D + dt.timedelta(days=1))
    except Exception as exc:   # noqa: BLE001 - the batch's own "no plan" error
        assert "no plan as of" in str(exc)
    else:
        raise AssertionError("a day with nothing decided must say so")

    console = Console(record=True, width=200)
    print_why(console, ctx.why(treated, D))
    text = console.export_text()
    assert "Real-time decisions" in text and f"sal-{treated}" in text and "No batch plan" in text
    ctx.close()
