"""RM worklists and exports hold only that RM's own customers, with personal data masked for the reader.

A workspace from the bank template (its config/channels.yaml: rm -> worklists, call -> Excel for the
call centre, sms -> CSV), a small bank extract and a day's lists in the lake; ``dispatch`` runs the
whole step on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.config.masking import masking_policy
from lifeloop.context import Context
from lifeloop.execution.dispatch import dispatch
from lifeloop.execution.worklists import export_worklist, worklist
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

D = dt.date(2024, 3, 1)

CUSTOMERS = [  # customer, name, mobile, gender, rm, branch
    ("C001", "王小明", "13800000001", "M", "RM001", "B01"),
    ("C002", "李华", "13800000002", "F", "RM001", "B01"),
    ("C003", "张伟", "13800000003", "M", "RM002", "B01"),
    ("C004", "赵敏", "13800000004", "F", "RM002", "B01"),
    ("C005", "孙丽", "13800000005", "F", "RM001", "B01"),
]


def publish(lake, area, tables, as_of=D):
    """One batch of the lake area: every table at once (a publish replaces the whole snapshot)."""
    def write(staging):
        for name, rows in tables.items():
            pq.write_table(pa.Table.from_pylist(rows), staging / f"{name}.parquet")
    lake.publish(area, as_of, write)


def customers(moved=()):
    # every customer holds a valid risk assessment that covers the R2 wealth offer (dispatch re-checks it)
    return [dict(customer_id=c, name=n, mobile=m, gender=g, rm_id="RM002" if c in moved else rm, branch_id=b,
                 risk_level="C3", risk_assessed_on=D - dt.timedelta(days=30),
                 risk_expires_on=D + dt.timedelta(days=335))
            for c, n, m, g, rm, b in CUSTOMERS]


def list_row(customer, strategy, wave, channel, priority, status="contact", rm=None):
    return dict(as_of=D, customer_id=customer, strategy=strategy, wave=wave,
                group="control" if status == "control" else "treated", status=status, channel=channel,
                send_at="09:00", purpose="marketing", script_id=f"{strategy}.{channel}",
                script_key=f"{strategy}.{channel}@{D}#{customer}", offer="WM090", priority=priority,
                rm_id=rm or next(c[4] for c in CUSTOMERS if c[0] == customer))


def replay(ctx, at="19:00"):
    """Dispatch the (historical) day D as if it were ``at`` local time on D (the real clock would expire it)."""
    path = ctx.config_dir / "channels.yaml"
    path.write_text(path.read_text(encoding="utf-8") + f'replay_at: "{at}"\n', encoding="utf-8")


@pytest.fixture
def ctx(tmp_path, database_url, ops_db, monkeypatch):  # ops_db: migrated (PostgreSQL is never auto-migrated)
    monkeypatch.setenv("LIFELOOP_DATABASE_URL", database_url)
    ctx = Context.init(tmp_path / "ws")
    replay(ctx)
    publish(ctx.lake, "bank", {
        "customers": customers(),
        "relationship_managers": [dict(rm_id="RM001", name="陈经理", branch_id="B01"),
                                  dict(rm_id="RM002", name="刘经理", branch_id="B01")],
        "consent": [dict(customer_id=c[0], purpose="marketing", channel=ch, granted=True)
                    for c in CUSTOMERS for ch in ("sms", "rm", "call")],
        "products": [dict(product_id="WM090", name="新客理财90天", product_type="wealth", risk_level="R2")]})
    publish(ctx.lake, "lists", {"lists": [
        list_row("C001", "wealth_churn_retention", "w1", "rm", 90),
        list_row("C002", "honeymoon_welcome", "d7_rm_call", "rm", 80),
        list_row("C003", "wealth_churn_retention", "w1", "rm", 90),
        list_row("C004", "wealth_churn_retention", "w1", "call", 90),
        list_row("C005", "honeymoon_welcome", "d1_sms", "sms", 80),
        list_row("C005", "maturity_reinvestment", "w1", "rm", 70, status="control"),
    ]})
    yield ctx
    ctx.close()


def test_an_rms_worklist_holds_only_their_own_customers_most_important_first_with_the_script(ctx):
    summary = dispatch(ctx, D)
    assert (summary.enqueued, summary.controls, summary.sent) == (5, 1, 5)
    rows = worklist(ctx.ops(), "RM001", lake=ctx.lake)
    assert [(r["customer_id"], r["priority"]) for r in rows] == [("C001", 90), ("C002", 80)]
    assert {r["customer_id"] for r in worklist(ctx.ops(), "RM002", lake=ctx.lake)} == {"C003"}
    # the RM sees their own customers' names and mobiles; the script greets with a masked name
    assert rows[1]["name"] == "李华" and rows[1]["mobile"] == "13800000002"
    assert "李*女士" in rows[1]["script"] and "陈经理" in rows[1]["script"] and "新客理财90天" in rows[1]["script"]
    # a control-group customer is recorded but gets no task
    assert "C005" not in {r["customer_id"] for r in rows}
    # one customer's tasks only (the customer page's marketing forms): the same rows, filtered in the database
    assert worklist(ctx.ops(), "RM001", lake=ctx.lake, customer_id="C002") == rows[1:]
    assert worklist(ctx.ops(), "RM001", lake=ctx.lake, customer_id="C003") == []   # RM002's customer


def test_a_customer_moved_to_another_rm_leaves_the_old_rms_worklist(ctx):
    dispatch(ctx, D)
    publish(ctx.lake, "bank", {"customers": customers(moved={"C001"})}, as_of=D + dt.timedelta(days=1))
    assert [r["customer_id"] for r in worklist(ctx.ops(), "RM001", lake=ctx.lake)] == ["C002"]
    # nor does it appear in the new RM's list: the task was made for RM001 (reassigning is a decision)
    assert [r["customer_id"] for r in worklist(ctx.ops(), "RM002", lake=ctx.lake)] == ["C003"]


def test_an_exported_worklist_holds_only_that_rms_customers(ctx, tmp_path):
    dispatch(ctx, D)
    path = export_worklist(worklist(ctx.ops(), "RM002", lake=ctx.lake), tmp_path / "rm002.csv")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["customer_id"] for r in rows] == ["C003"]
    assert "王小明" not in path.read_text(encoding="utf-8-sig")


def test_the_call_centre_and_sms_exports_mask_personal_data_for_their_analyst_recipients(ctx):
    dispatch(ctx, D)
    from openpyxl import load_workbook

    calls = list((ctx.workspace / "exports" / "call").rglob("*.xlsx"))
    sheet = load_workbook(calls[0]).active
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, [c.value for c in r], strict=False)) for r in sheet.iter_rows(min_row=2)]
    assert [(r["customer_id"], r["name"], r["mobile"]) for r in rows] == [("C004", "赵*", "138****0004")]
    sms = next((ctx.workspace / "exports" / "sms").rglob("*.csv")).read_text(encoding="utf-8-sig")
    assert "C005" in sms and "孙丽" not in sms and "13800000005" not in sms


def test_worklists_and_exports_follow_the_workspaces_masking_yaml(ctx, tmp_path):
    # the bank decides RMs see names only, and the call centre's analysts see names too
    (ctx.config_dir / "masking.yaml").write_text(
        "version: 1\nroles:\n  rm:\n    show: [name]\n  analyst:\n    show: [name]\n", encoding="utf-8")
    summary = dispatch(ctx, D)
    policy = masking_policy(ctx.configs)
    rows = worklist(ctx.ops(), "RM001", lake=ctx.lake, policy=policy)
    assert [(r["name"], r["mobile"]) for r in rows][1] == ("李华", "138****0002")
    text = export_worklist(rows, tmp_path / "rm001.csv").read_text(encoding="utf-8-sig")
    assert "13800000002" not in text and "138****0002" in text
    # the call centre's and the SMS file now show names: held for a second person (双人复核), nothing written yet
    assert summary.held == 2 and not list((ctx.workspace / "exports").rglob("*.xlsx"))


def test_dispatching_the_same_day_again_sends_nothing_twice(ctx):
    first = dispatch(ctx, D)
    again = dispatch(ctx, D)
    assert (again.enqueued, again.already_queued, again.controls, again.sent) == (0, 5, 0, 0)
    assert again.outbox["sent"] == first.outbox["sent"] == 5 and again.outbox["cancelled"] == 1
    assert len(list((ctx.workspace / "exports" / "sms").rglob("*.csv"))) == 1


def test_a_retry_left_over_from_an_earlier_day_is_sent_on_a_later_day_not_blocked_for_want_of_consent(ctx):
    import http.server
    import socket
    import threading

    import sqlalchemy as sa

    from lifeloop.store.ops.database import unit_of_work
    from lifeloop.store.ops.models import Dispatch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (ctx.config_dir / "channels.yaml").write_text(
        "version: 1\nreplay_at: '19:00'\nchannels:\n  sms: {kind: webhook, url: "
        f"'http://127.0.0.1:{port}/send', retries: 1,"
        " backoff_seconds: 0.01, timeout_seconds: 2}\n", encoding="utf-8")
    first = dispatch(ctx, D)                       # the gateway is down: the SMS waits for a retry
    assert (first.sent, first.retrying) == (0, 1)
    later = D + dt.timedelta(days=1)
    publish(ctx.lake, "lists", {"lists": [list_row("C003", "wealth_churn_retention", "w1", "rm", 90)]}, as_of=later)
    with unit_of_work(ctx.ops()) as session:       # time passes: the retry is due
        session.execute(sa.update(Dispatch).values(next_attempt_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
                        .where(Dispatch.status == "pending"))

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        second = dispatch(ctx, later)
    finally:
        server.shutdown()
        server.server_close()
    assert (second.sent, second.blocked) == (1, 0)  # C005's SMS from D, consent read from the bank extract


def test_an_unknown_or_lower_case_rm_id_gets_did_you_mean_instead_of_an_empty_worklist(ctx):
    from lifeloop.errors import NotFoundError
    from tests.refusals import state

    dispatch(ctx, D)
    before = state(ctx)
    with pytest.raises(NotFoundError) as lower:
        worklist(ctx.ops(), "rm001", lake=ctx.lake)
    assert lower.value.message == "no relationship manager 'rm001'; did you mean 'RM001'?"
    assert lower.value.hint == "RM ids are case-sensitive, as in the bank's relationship_managers extract"
    with pytest.raises(NotFoundError) as typo:
        worklist(ctx.ops(), "RM01", lake=ctx.lake)
    assert typo.value.message == "no relationship manager 'RM01'; did you mean 'RM001' or 'RM002'?"
    with pytest.raises(NotFoundError) as unknown:
        worklist(ctx.ops(), "ZZ", lake=ctx.lake)
    assert unknown.value.message == "no relationship manager 'ZZ'"
    assert state(ctx) == before


def test_a_known_rm_without_tasks_has_an_empty_worklist_and_the_cli_says_who_is_unknown(ctx):
    from typer.testing import CliRunner

    from lifeloop.cli.app import app

    assert worklist(ctx.ops(), "RM002", lake=ctx.lake) == []   # in the bank's RM table, no task yet
    result = CliRunner().invoke(app, ["-w", str(ctx.workspace), "worklist", "rm002"])
    assert result.exit_code == 1 and "0 open tasks" not in result.output
    assert str(result.exception).startswith("no relationship manager 'rm002'; did you mean 'RM002'?")


def test_the_rms_read_once_per_bank_file_follow_a_replaced_or_newer_batch(ctx):
    """known_rms keeps what it read of the relationship_managers file only while that file is unchanged."""
    from lifeloop.errors import NotFoundError
    from lifeloop.execution.worklists import known_rms

    rms = [dict(rm_id="RM001", name="陈经理", branch_id="B01"), dict(rm_id="RM002", name="刘经理", branch_id="B01")]
    assert known_rms(ctx.lake) == ["RM001", "RM002"] == known_rms(ctx.lake)   # the second from memory
    with pytest.raises(NotFoundError):
        worklist(ctx.ops(), "RM003", lake=ctx.lake)
    # the same batch published again with a third RM: the same path, a new file
    publish(ctx.lake, "bank", {"customers": customers(),
                               "relationship_managers": [*rms, dict(rm_id="RM003", name="王经理", branch_id="B01")]})
    assert known_rms(ctx.lake) == ["RM001", "RM002", "RM003"]
    assert worklist(ctx.ops(), "RM003", lake=ctx.lake) == []
    # a newer batch without RM003 (and asked as of the older date: that date's file, still in memory)
    publish(ctx.lake, "bank", {"customers": customers(), "relationship_managers": rms}, as_of=D + dt.timedelta(days=1))
    assert known_rms(ctx.lake) == ["RM001", "RM002"]
    assert known_rms(ctx.lake, D) == ["RM001", "RM002", "RM003"]
    with pytest.raises(NotFoundError):
        worklist(ctx.ops(), "RM003", lake=ctx.lake)
