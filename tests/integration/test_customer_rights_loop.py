"""The customer's rights through the whole loop (the Context on SQLite and PostgreSQL): the plan drops opted-out
and suppressed customers with the policy in the lists and in ``why``; ``personalised: false`` is checked with
file:line:field; a purge is refused with its dates, then removes the customer from every retained snapshot and
the ops database; a later ingest that brings them back keeps them out of every treated marketing row; a run whose
config changed is audited as ``config.live``."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from lifeloop.errors import ConfigError, DataError
from lifeloop.store.ops.models import AuditEntry, ConsentChange, Suppression
from lifeloop.store.suppression import digest
from tests.factories import write_canonical
from tests.integration.test_plan import CUSTOMERS, STRATEGIES, D, publish_insight, run_day
from tests.integration.test_plan import ctx as plan_ctx  # noqa: F401 - the tiny lake fixture
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

UTC = dt.UTC
D2 = D + dt.timedelta(days=7)
T0 = dt.datetime(2024, 7, 1, 2, 0, tzinfo=UTC)


@pytest.fixture()
def ctx(plan_ctx, ops_db):  # noqa: F811
    plan_ctx._ops = ops_db   # the same workspace, its operations database on SQLite or PostgreSQL
    return plan_ctx


def pick(rows, *keys):
    return [tuple(r[k] for k in keys) for r in rows]


def actions(ctx, prefix: str) -> list[tuple]:
    with ctx.ops()() as s:
        return [(e.action, e.target_id, e.result) for e in s.scalars(
            sa.select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id))]


def test_the_plan_drops_opted_out_customers_from_personalised_strategies_only_and_why_says_so(ctx):
    text = STRATEGIES.replace('    audience: "birthday_today"\n', '    audience: "birthday_today"\n'
                                                                    '    personalised: false\n')
    (ctx.config_dir / "strategies.yaml").write_text(text, encoding="utf-8")
    ctx.set_no_personalisation("C1", opted_out=True, source="app", reason="no recommendations")
    ctx.set_no_personalisation("C5", opted_out=True, source="branch", reason="form 12")
    _, lists = run_day(ctx, D)
    assert pick(lists, "strategy", "customer_id", "group", "status", "dropped_by") == [
        ("birthday", "C5", "treated", "contact", None),          # non-personalised: C5 still gets it
        ("outflow", "C4", "treated", "contact", None),
        ("salary_day", "C3", "treated", "contact", None),
        ("welcome", "C1", "treated", "dropped", "no_personalisation"),
        ("welcome", "C2", "treated", "dropped", "consent"),
        ("welcome", "C3", "control", "control", None),
        ("welcome", "C4", "treated", "dropped", "cap_overall_day"),
    ]
    why = ctx.why("C1", D)
    assert "no_personalisation" in str(why) and "PIPL Art. 24" in str(why)
    assert actions(ctx, "rights.") == [("rights.no_personalisation.set", "C1", "ok"),
                                       ("rights.no_personalisation.set", "C5", "ok")]


def test_a_strategy_cannot_call_itself_non_personalised_while_its_audience_reads_tags(ctx):
    text = STRATEGIES.replace("    scenario: {kind: lifecycle, stages: [honeymoon]}\n",
                              "    scenario: {kind: lifecycle, stages: [honeymoon]}\n    personalised: false\n")
    (ctx.config_dir / "strategies.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        ctx.run(D, ["audiences", "plan"])
    shown = err.value.render()
    assert "config/strategies.yaml:" in shown and "strategies[0].audience" in shown
    assert "personalised: false, but the audience reads digital_share_90d, stage" in shown
    assert not ctx.lake.exists("audiences", D)


def test_a_purge_is_refused_with_its_dates_until_the_retention_has_passed(ctx):
    with pytest.raises(DataError) as err:
        ctx.purge_customer("C1", reason="asked", now=T0)
    assert "neither withdrawn consent nor left" in err.value.render()
    ctx.change_consent("C1", granted=False, channel="all", purpose="marketing", source="customer",
                       reason="closing the relationship", now=T0)
    with pytest.raises(DataError) as err:
        ctx.purge_customer("C1", reason="asked", now=T0 + dt.timedelta(days=10))
    shown = err.value.render()
    assert "withdrew consent on 2024-07-01" in shown and "runs until 2024-12-28" in shown and "2024-07-11" in shown
    assert actions(ctx, "rights.purge") == [("rights.purge", "C1", "refused"), ("rights.purge", "C1", "refused")]
    assert "C1" in pq.read_table(ctx.lake.snapshot_dir("bank", D) / "customers.parquet")["customer_id"].to_pylist()


def test_a_purged_customer_leaves_every_snapshot_and_a_later_ingest_bringing_them_back_never_treats_them(ctx, tmp_path):
    run_day(ctx, D)
    ctx.change_consent("C1", granted=False, channel="all", purpose="marketing", source="customer",
                       reason="closing the relationship", now=T0)
    done = ctx.purge_customer("C1", reason="relationship closed, retention over", now=T0 + dt.timedelta(days=181))
    assert done["suppressed"] == ["customer_id"]   # the tiny bank holds no ID number or mobile for C1
    assert done["ops_rows"]["consent_changes"] == 1
    # no retained snapshot of any area holds C1 any more; the others are still there
    for area in ("bank", "features", "lifecycle", "segments", "audiences", "lists"):
        for day in ctx.lake.dates(area):
            for f in ctx.lake.snapshot_dir(area, day).glob("*.parquet"):
                if "customer_id" in pq.read_schema(f).names:
                    assert "C1" not in pq.read_table(f, columns=["customer_id"])["customer_id"].to_pylist(), f
    assert "C2" in pq.read_table(ctx.lake.snapshot_dir("bank", D) / "customers.parquet")["customer_id"].to_pylist()
    assert ctx.lake.manifest("bank", D)["erasures"] == [{"kind": "purge", "request": done["request_id"],
                                                         "rows": done["lake"]["snapshots"]["bank/2024-06-30"]}]
    with ctx.ops()() as s:
        assert s.scalars(sa.select(ConsentChange.customer_id)).all() == []
        # keyed by the key manager: only the workspace's keys recompute it
        assert [(x.kind, x.digest) for x in s.scalars(sa.select(Suppression))] == [
            ("customer_id", digest(ctx.keys, "customer_id", "C1"))]
    # a later extract brings C1 back (the same customer number): the ingest recognises and suppresses them
    rows = [dict(zip(("customer_id", "name", "gender", "birth_date", "id_number", "mobile", "email", "city",
                      "occupation", "branch_id", "rm_id", "open_date", "is_prospect", "risk_level", "risk_assessed_on",
                      "risk_expires_on"), (None if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                                           for v in c), strict=True)) for c in CUSTOMERS]
    holdings = [{"account_id": "A9", "customer_id": "C2", "product_id": "TD1Y", "snapshot_date": D2.isoformat(),
                 "balance": "10.00", "status": "open"}]
    report = ctx.ingest(write_canonical(tmp_path / "extract", {"customers": rows, "holdings": holdings}), as_of=D2)
    assert report.suppressed == {"C1": ["customer_id"]}
    assert ("rights.suppressed.match", "C1", "ok") in actions(ctx, "rights.")
    publish_insight(ctx.lake, D2)
    _, lists = run_day(ctx, D2)
    mine = [r for r in lists if r["customer_id"] == "C1"]
    assert mine and all(r["status"] == "dropped" and r["dropped_by"] == "suppressed" for r in mine)
    assert not any(r["customer_id"] == "C1" and r["group"] == "treated" and r["status"] == "contact" for r in lists)
    assert ctx.customer_rights("C1")["suppressed"]["matched_on"] == ["customer_id"]


@pytest.mark.slow   # three checked runs: ~10 s on a busy 2-core machine
def test_a_run_whose_config_changed_is_audited_as_config_live(ctx):
    ctx.run(D, ["audiences"])
    ctx.run(D, ["audiences"])
    text = (ctx.config_dir / "strategies.yaml").read_text(encoding="utf-8").replace("priority: 30", "priority: 31")
    (ctx.config_dir / "strategies.yaml").write_text(text, encoding="utf-8")
    ctx.run(D, ["audiences"])
    with ctx.ops()() as s:
        entries = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "config.live")
                            .order_by(AuditEntry.id)).all()
    # the first run puts every file its steps read live (audiences reads the policy, lifecycle and segments too)
    assert [sorted(e.details["changed"]) for e in entries] == [
        ["contact_policy.yaml", "lifecycle.yaml", "segments.yaml", "strategies.yaml"], ["strategies.yaml"]]
    assert entries[1].details["changed"]["strategies.yaml"] == ctx.config_hash("strategies")
    assert entries[1].details["previous"]["strategies.yaml"] != ctx.config_hash("strategies")


def test_the_customers_commands_say_what_they_did_and_a_refusal_is_one_clear_error(plan_ctx):  # noqa: F811
    from typer.testing import CliRunner

    from lifeloop.cli.app import app

    ws = ["-w", str(plan_ctx.workspace)]
    runner = CliRunner()
    done = runner.invoke(app, [*ws, "customers", "no-personalisation", "set", "C1", "--reason", "asked in branch"])
    assert done.exit_code == 0 and "C1: opted out of personalised marketing" in done.output
    done = runner.invoke(app, [*ws, "customers", "delete-tags", "C1", "--reason", "letter"])
    assert done.exit_code == 0 and "tag deletion request" in done.output
    done = runner.invoke(app, [*ws, "customers", "apply-retention"])
    assert done.exit_code == 0 and "1 request(s) of 1 customer(s) applied" in done.output
    done = runner.invoke(app, [*ws, "customers", "rights", "C1"])
    assert done.exit_code == 0 and "personalised marketing OFF" in done.output
    assert "delete_tags applied" in done.output
    done = runner.invoke(app, [*ws, "customers", "purge", "C1", "--reason", "asked"])
    # the entry point turns a LifeloopError into one message and exit code 1 (the runner shows the exception)
    assert done.exit_code == 1 and isinstance(done.exception, DataError)
    assert "neither withdrawn consent nor left" in str(done.exception) and "--channel all" in done.exception.render()
