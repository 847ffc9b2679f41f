"""Cells through the whole loop on a small simulated bank: plan -> dispatch (simulator) -> outcomes -> evaluate.

The default map, except that the dormant reactivation journey (an SMS, then a call 14 days later to
those who did not respond) is split into two cells of its treated customers: ``sms_only`` gets the SMS
alone, ``full`` the whole journey with its own SMS script (script B). Fourteen days of the loop run, so
the first day's entrants reach their call. (The honeymoon journey would be the textbook case, but its
wealth-product offer meets suitability: too few of a small bank's newcomers are assessed to compare.)
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))  # review_truth, as the other loop tests import it

from review_truth import base_workspace  # noqa: E402

from lifeloop.context import Context  # noqa: E402
from lifeloop.data.simulator import SimulatedBank  # noqa: E402
from lifeloop.execution.closed_loop import run_loop  # noqa: E402
from lifeloop.store.ops.models import Dispatch  # noqa: E402

# `make validate`: 45-80 s of setup, a 2,000-customer bank lives 14 days of the loop
pytestmark = [pytest.mark.slow, pytest.mark.validate]

STRATEGY = "dormant_reactivation"
CALL_AFTER = 14
SCRIPT_B = "【{{ bank_name }}】B话术：{{ customer_name }}{{ title }}，您的回归礼遇已到账，登录即可查看。回复TD退订"
CELLS = f"""    cells:
      - {{id: sms_only, share: 0.5, waves: [sms]}}
      - id: full
        share: 0.5
        scripts:
          sms: {{zh: "{SCRIPT_B}", en: "【{{{{ bank_name }}}}】Script B. Reply STOP to opt out"}}
"""


LOOP_STEPS = ("features", "lifecycle", "segments", "audiences", "plan", "dispatch")


def with_cells(text: str) -> str:
    """The strategy's block gets the two cells (at its end, before the next strategy)."""
    start = text.index(f"  - id: {STRATEGY}")
    end = text.index("\n  - id: ", start + 5)
    return text[:end].rstrip("\n") + "\n" + CELLS + text[end:]


def lists(ctx, day):
    t = pq.read_table(ctx.lake.snapshot_dir("lists", day) / "lists.parquet")
    return t.filter(pc.equal(t["strategy"], STRATEGY))


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("cells")
    base, as_of = base_workspace(root / "bank", 2000, days=200)
    strategies = base / "config" / "strategies.yaml"
    strategies.write_text(with_cells(strategies.read_text(encoding="utf-8")), encoding="utf-8")
    SimulatedBank.open(base / "extracts").reseed(7)
    ctx = Context(base)
    with ctx:
        ctx.run(as_of, steps=["audiences", "plan", "dispatch"])
        days = run_loop(ctx, base / "extracts", as_of, CALL_AFTER, steps=LOOP_STEPS)
        last = days[-1].bank_day
        ctx.run(last, steps=["outcomes"])
        doc = ctx.evaluate([STRATEGY], interim=True)
        with ctx.ops()() as session:
            sent = [(d.customer_id, d.wave, d.script_id, (d.payload or {}).get("script"), (d.payload or {}).get("cell"))
                    for d in session.scalars(sa.select(Dispatch).where(Dispatch.strategy_id == STRATEGY))]
        yield {"ctx": ctx, "first": as_of, "days": [as_of] + [d.bank_day for d in days], "doc": doc, "sent": sent,
               "outcomes": pq.read_table(ctx.lake.snapshot_dir("outcomes", last) / "outcomes.parquet")}


def test_treated_entrants_are_split_into_the_cells_and_controls_have_none(loop):
    ctx, first = loop["ctx"], loop["first"]
    t = lists(ctx, first)
    rows = t.to_pylist()
    assert rows, "no entrants on the first day"
    assert {r["cell"] for r in rows if r["group"] == "treated"} <= {"sms_only", "full"}
    assert all(r["cell"] is None for r in rows if r["group"] == "control")
    assert {r["cell"] for d in loop["days"] for r in lists(ctx, d).to_pylist() if r["group"] == "treated"} == {
        "sms_only", "full"}
    # other strategies have no cells, but churn_warning's selection cells (select:) tag treated and control rows
    other = pq.read_table(ctx.lake.snapshot_dir("lists", first) / "lists.parquet")
    other = other.filter(pc.not_equal(other["strategy"], STRATEGY))
    selected = other.filter(pc.equal(other["strategy"], "churn_warning"))
    assert set(selected["cell"].to_pylist()) <= {"model", "rule"}
    plain = other.filter(pc.not_equal(other["strategy"], "churn_warning"))
    assert plain.num_rows and plain["cell"].null_count == plain.num_rows


def test_the_full_cell_gets_script_b_and_its_own_script_id_when_dispatched(loop):
    sms = [s for s in loop["sent"] if s[1] == "sms" and s[3]]
    full = [s for s in sms if s[4] == "full"]
    only = [s for s in sms if s[4] == "sms_only"]
    assert full and only
    assert {s[2] for s in full} == {f"{STRATEGY}.full.sms"} and all("】B话术：" in s[3] for s in full)
    assert {s[2] for s in only} == {f"{STRATEGY}.sms"} and not any("B话术" in s[3] for s in only)


def test_the_call_goes_to_the_full_cell_and_the_control_group_but_never_to_sms_only(loop):
    ctx = loop["ctx"]
    calls = [r for d in loop["days"] for r in lists(ctx, d).to_pylist() if r["wave"] == "call"]
    assert calls, "no call wave in the fourteen days"
    assert {r["cell"] for r in calls if r["group"] == "treated"} <= {"full"}
    entry_cells = {r["customer_id"]: r["cell"] for d in loop["days"] for r in lists(ctx, d).to_pylist()
                   if r["wave"] == "sms"}
    assert all(entry_cells[r["customer_id"]] == r["cell"] for r in calls)   # a customer keeps their cell
    # the first day's control customers follow the journey ("no response"): each is a call candidate 14 days on;
    # its treated sms_only customers are not candidates at all, not even dropped ones
    first = loop["first"]
    day1 = lists(ctx, first).to_pylist()
    due = lists(ctx, first + dt.timedelta(days=CALL_AFTER)).to_pylist()
    controls = {r["customer_id"] for r in day1 if r["wave"] == "sms" and r["status"] == "control"}
    assert controls and controls == {r["customer_id"] for r in due if r["wave"] == "call" and r["group"] == "control"}
    sms_only = {r["customer_id"] for r in day1 if r["cell"] == "sms_only"}
    assert sms_only and not sms_only & {r["customer_id"] for r in due if r["wave"] == "call"}


def test_outcomes_carry_the_cell_and_the_review_compares_cells_with_control_and_each_other(loop):
    o = loop["outcomes"]
    mine = o.filter(pc.equal(o["strategy"], STRATEGY))
    by_arm = {}
    for arm, cell in zip(mine["arm"].to_pylist(), mine["cell"].to_pylist(), strict=False):
        by_arm[(arm, cell)] = by_arm.get((arm, cell), 0) + 1
    assert set(by_arm) <= {("treated", "sms_only"), ("treated", "full"), ("control", None)}
    (s,) = loop["doc"]["strategies"]
    assert [c["cell"] for c in s["cells"]] == ["sms_only", "full"]
    assert [c["treated"] for c in s["cells"]] == [by_arm.get(("treated", "sms_only"), 0),
                                                   by_arm.get(("treated", "full"), 0)]
    assert s["cells"][0]["waves"] == ["sms"] and s["cells"][1]["scripts"] == ["sms"]
    assert s["entries"]["treated"] == sum(c["treated"] for c in s["cells"])   # the headline: all treated
    assert [(p["cell"], p["against"]) for p in s["pairwise"]] == [("full", "sms_only")]
    assert s["cell_sample_ratio"]["mismatch"] is False
    assert all(c["versus_control"]["outcome"] == s["primary_outcome"] for c in s["cells"])
    # the full journey's calls cost more per entry than the SMS alone
    assert s["cells"][1]["cost_per_entry"] > s["cells"][0]["cost_per_entry"]
