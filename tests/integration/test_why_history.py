"""`lifeloop why` names the policies that depend on the ops history, and says the same months later.

A small simulated bank (350 customers over 60 days, seed 5) whose relationship managers can each take
one task a day (the bank's ``relationship_managers.daily_capacity``), with an RM service review for
every customer added to the map. Day D is planned and dispatched, so from D+1 on the plan reads its
history from the operations database. Then, as the bank's people would:

* a customer contacted by SMS on D refuses it (a feedback file imported with ``ctx.import_feedback``);
* another customer, not contacted on D, is put on do-not-disturb from D+1 (``add_do_not_disturb``);
* the weekly cap is tightened to one contact, and an SMS service notice for everyone is added.

D+1 is planned: ``refusal_memory``, ``dnd`` and ``cap_overall_week`` (an SMS contact on D) drop them;
``capacity_rm`` dropped someone on D. Later the DND is lifted, the cap and the map are put back, the
bank's next extract restores the RMs' capacity, D+2 and D+3 are run and dispatched and a day two
months later is planned: the explanations of D and D+1 must come back identical, from Python and from
the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.context import Context

STEPS = ["features", "lifecycle", "segments", "audiences", "plan"]
UTC = dt.UTC
CAPS = "caps: {day: 1, week: 3, month: 6}"
WEEKLY_ONE = "caps: {day: 1, week: 1, month: 6}"
RM_REVIEW = """
  - id: service_rm_review
    name: {zh: 客户经理服务回访, en: RM service review}
    owner: 零售部-客户体验
    objective: {kind: customers, metric: retention_rate, window_days: 90}
    scenario: {kind: calendar, name: 服务回访}
    audience: "coalesce(aum, 0) >= 0"
    purpose: service
    offer: {code: SERVICE_REVIEW}
    channels: [rm]
    scripts:
      rm: {zh: "回访 {{ customer_name }}", en: "Review {{ customer_name }}"}
    waves:
      - {id: review, day: 0}
    holdout: 0.0
    priority: 20
    start: 2024-01-01
    reentry_days: 30
"""
SMS_NOTICE = (RM_REVIEW.replace("service_rm_review", "service_sms_notice").replace("[rm]", "[sms]")
              .replace("rm: {zh", "sms: {zh").replace("id: review", "id: notice"))


def _rows(ctx, day, **match):
    return [r for r in ctx.lists(day).to_pylist() if all(r[k] == v for k, v in match.items())]


def _cli_json(workspace, customer_id, day):
    from typer.testing import CliRunner

    from lifeloop.cli.app import app

    result = CliRunner().invoke(app, ["--workspace", str(workspace), "why", customer_id, "--as-of", day.isoformat(),
                                      "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """Days D and D+1 planned (D dispatched), the people's actions in between; the dropped customers by policy."""
    from lifeloop.store.ops.consent import add_do_not_disturb
    from lifeloop.store.ops.contacts import history
    from lifeloop.store.ops.database import unit_of_work

    base = tmp_path_factory.mktemp("whyhistory")
    ctx = Context.init(base / "ws")
    channels = ctx.config_dir / "channels.yaml"   # dispatch the simulated days at 19:00 local, not the real clock
    channels.write_text(channels.read_text(encoding="utf-8") + 'replay_at: "19:00"\n', encoding="utf-8")
    sim = ctx.simulate(base / "extracts", customers=350, days=60, seed=5)
    d, d1 = sim.as_of, sim.as_of + dt.timedelta(days=1)
    rms_file = base / "extracts" / "relationship_managers.parquet"
    rms = pq.read_table(rms_file)
    assert set(rms["daily_capacity"].to_pylist()) == {20}
    # the bank's extract of D: every relationship manager can take one task a day
    one = pa.array([1] * rms.num_rows, pa.int32())
    pq.write_table(rms.set_column(rms.schema.get_field_index("daily_capacity"), "daily_capacity", one), rms_file)
    ctx.ingest(base / "extracts", as_of=d)
    strategies = ctx.config_dir / "strategies.yaml"
    strategies.write_text(strategies.read_text(encoding="utf-8") + RM_REVIEW, encoding="utf-8")
    ctx.run(d, steps=STEPS)
    ctx.dispatch(d)

    contacted = sorted(r["customer_id"] for r in _rows(ctx, d, strategy="dormant_reactivation", status="contact"))
    refuser, capped = contacted[0], contacted[1]
    in_audience = {r["customer_id"] for r in _rows(ctx, d, strategy="service_rm_review")}
    quiet = sorted(in_audience - {r["customer_id"] for r in _rows(ctx, d) if r["status"] != "dropped"}
                   - {r["customer_id"] for r in _rows(ctx, d, dropped_by="consent")})[0]
    with unit_of_work(ctx.ops()) as s:
        (sent,) = [x for x in history(s, customer_id=refuser) if x.as_of == d]
        assert sent.channel == "sms" and sent.status == "sent"
        dnd = add_do_not_disturb(s, customer_id=quiet, reason="complaint to the branch", created_by="branch-007",
                                 starts_at=dt.datetime.combine(d1, dt.time.min, tzinfo=UTC))
        sent_id, dnd_id = sent.id, dnd.id
    feedback = base / "feedback.csv"
    feedback.write_text(f"contact_id,outcome,recorded_at,recorded_by,note\n"
                        f"{sent_id},refused,{d.isoformat()}T15:00:00,cc-001,do not text me\n", encoding="utf-8")
    assert ctx.import_feedback(feedback).refusals == 1
    policy = ctx.config_dir / "contact_policy.yaml"
    text = policy.read_text(encoding="utf-8")
    assert CAPS in text
    policy.write_text(text.replace(CAPS, WEEKLY_ONE), encoding="utf-8")
    strategies.write_text(strategies.read_text(encoding="utf-8") + SMS_NOTICE, encoding="utf-8")
    ctx.close()
    ctx = Context(ctx.workspace)   # a fresh context reads today's (edited) configuration
    ctx.run(d1, steps=STEPS)
    rm_dropped = sorted(r["customer_id"] for r in _rows(ctx, d, dropped_by="capacity_rm"))
    assert rm_dropped, "no relationship manager ran out of capacity on D"
    picked = {"refusal_memory": (refuser, d1), "dnd": (quiet, d1), "cap_overall_week": (capped, d1),
              "capacity_rm": (rm_dropped[0], d)}
    before = {p: ctx.why(c, day) for p, (c, day) in picked.items()}
    yield {"ctx": ctx, "d": d, "d1": d1, "picked": picked, "before": before, "dnd_id": dnd_id, "base": base,
           "rms": rms}
    ctx.close()


@pytest.fixture(scope="module")
def later(bank):
    """The DND lifted, cap and map put back, the RMs' capacity restored by the next extract; later days run."""
    from lifeloop.store.ops.consent import lift_do_not_disturb
    from lifeloop.store.ops.database import unit_of_work

    ctx, d1, base = bank["ctx"], bank["d1"], bank["base"]
    d2, d3 = d1 + dt.timedelta(days=1), d1 + dt.timedelta(days=2)
    with unit_of_work(ctx.ops()) as s:
        lift_do_not_disturb(s, entry_id=bank["dnd_id"], lifted_by="branch-007", reason="resolved",
                            at=dt.datetime.combine(d2, dt.time.min, tzinfo=UTC))
    policy = ctx.config_dir / "contact_policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace(WEEKLY_ONE, CAPS), encoding="utf-8")
    strategies = ctx.config_dir / "strategies.yaml"
    text = strategies.read_text(encoding="utf-8")
    strategies.write_text(text.replace(SMS_NOTICE, "").replace("holdout_salt: lifeloop-2024",
                                                              "holdout_salt: changed-2025"), encoding="utf-8")
    # the bank's next extract (its state tables) gives the RMs their usual capacity back
    nxt = base / "extracts_d2"
    nxt.mkdir()
    for name in ("branches", "customers", "products", "consent"):
        shutil.copy(base / "extracts" / f"{name}.parquet", nxt / f"{name}.parquet")
    pq.write_table(bank["rms"], nxt / "relationship_managers.parquet")
    ctx.ingest(nxt, as_of=d2)
    # two months without a new extract is refused by default (stale data): this test means it
    settings = ctx.workspace / "lifeloop.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").replace("max_days_after_batch: 7",
                                                                     "max_days_after_batch: 90"),
                        encoding="utf-8")
    fresh = Context(ctx.workspace)
    try:
        for day in (d2, d3):
            fresh.run(day, steps=STEPS)
            fresh.dispatch(day)
        fresh.run(d1 + dt.timedelta(days=61), steps=STEPS)   # and two months later
        after = {p: fresh.why(c, day) for p, (c, day) in bank["picked"].items()}
        cli = {p: _cli_json(fresh.workspace, c, day) for p, (c, day) in bank["picked"].items()}
        quiet_later = _rows(fresh, d2, customer_id=bank["picked"]["dnd"][0])
        rm_later = [r["dropped_by"] for r in fresh.lists(d2).to_pylist()]
        rm_tasks = Counter(r["rm_id"] for r in _rows(fresh, d2, channel="rm", status="contact"))
    finally:
        fresh.close()
    return {"after": after, "cli": cli, "quiet_later": quiet_later, "rm_later": rm_later,
            "rm_tasks": rm_tasks}


def _dropping(report, policy):
    return [c for c in report["decisions"] if c["dropped_by"] == policy]


@pytest.mark.parametrize("policy", ["refusal_memory", "dnd", "cap_overall_week", "capacity_rm"])
def test_a_customer_dropped_by_a_history_policy_is_explained_naming_that_policy(bank, policy):
    customer, day = bank["picked"][policy]
    report = bank["ctx"].why(customer, day)
    dropped = _dropping(report, policy)
    assert dropped, f"{policy} dropped nothing of {customer} on {day}"
    listed = _rows(bank["ctx"], day, customer_id=customer, dropped_by=policy)
    assert sorted((c["strategy"], c["detail"]) for c in dropped) == sorted((r["strategy"], r["detail"]) for r in listed)
    for c in dropped:
        assert c["status"] == "dropped" and c["decision"].startswith(f"dropped by {policy} (")
        assert policy in c["detail"] and c not in report["contacted"]


def test_the_refusal_is_remembered_on_the_channel_it_was_made_on(bank):
    customer, d1 = bank["picked"]["refusal_memory"]
    report = bank["ctx"].why(customer, d1)
    (notice,) = [c for c in report["decisions"] if c["strategy"] == "service_sms_notice"]
    assert notice["detail"] == "sms: refusal_memory"
    # the day before, the same customer was contacted by SMS (and refused it afterwards)
    (contact,) = bank["ctx"].why(customer, bank["d"])["contacted"]
    assert (contact["strategy"], contact["channel"]) == ("dormant_reactivation", "sms")


def test_dnd_drops_every_strategy_of_the_customer_that_day(bank):
    customer, d1 = bank["picked"]["dnd"]
    report = bank["ctx"].why(customer, d1)
    assert report["decisions"] and {c["dropped_by"] for c in report["decisions"]} == {"dnd"}
    assert {c["strategy"] for c in report["decisions"]} >= {"service_sms_notice", "service_rm_review"}


def test_the_weekly_cap_counts_the_contact_dispatched_the_day_before(bank):
    customer, d1 = bank["picked"]["cap_overall_week"]
    assert [c["channel"] for c in bank["ctx"].why(customer, bank["d"])["contacted"]] == ["sms"]
    notice = next(c for c in bank["ctx"].why(customer, d1)["decisions"] if c["strategy"] == "service_sms_notice")
    assert notice["detail"] == "sms: cap_overall_week"


def test_capacity_per_rm_ranks_the_dropped_customer_behind_the_one_task_their_rm_could_take(bank):
    ctx, d = bank["ctx"], bank["d"]
    customer, _ = bank["picked"]["capacity_rm"]
    mine = _dropping(ctx.why(customer, d), "capacity_rm")[0]
    (row,) = _rows(ctx, d, customer_id=customer, strategy="service_rm_review")
    taken = [r for r in ctx.lists(d).to_pylist() if r["rm_id"] == row["rm_id"] and r["channel"] == "rm"
             and r["status"] == "contact"]
    assert len(taken) == 1   # the bank's data gives each RM one task a day
    theirs = next(c for c in ctx.why(taken[0]["customer_id"], d)["contacted"] if c["channel"] == "rm")
    assert theirs["day_rank"] < mine["day_rank"] and mine["detail"] == "rm: capacity_rm"


@pytest.mark.parametrize("policy", ["refusal_memory", "dnd", "cap_overall_week", "capacity_rm"])
def test_the_cli_json_names_the_policy(bank, policy):
    customer, day = bank["picked"][policy]
    data = _cli_json(bank["ctx"].workspace, customer, day)
    assert policy in [c["dropped_by"] for c in data["decisions"]]
    assert any(c["decision"].startswith(f"dropped by {policy}") for c in data["decisions"])


def test_the_later_runs_used_the_lifted_dnd_and_the_restored_capacity(later, bank):
    # the lift took effect: on D+2 the customer is no longer dropped by dnd; no RM ran out of tasks
    assert later["quiet_later"] and "dnd" not in [r["dropped_by"] for r in later["quiet_later"]]
    assert max(later["rm_tasks"].values()) > 1 and "capacity_rm" not in later["rm_later"]


@pytest.mark.parametrize("policy", ["refusal_memory", "dnd", "cap_overall_week", "capacity_rm"])
def test_the_explanation_of_the_day_is_unchanged_after_later_runs_and_edits(later, bank, policy):
    before = bank["before"][policy]
    assert later["after"][policy] == before
    # and the CLI's JSON is the same explanation
    assert later["cli"][policy] == json.loads(json.dumps(before, ensure_ascii=False, default=str))
