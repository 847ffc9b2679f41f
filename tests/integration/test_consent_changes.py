"""Consent changes within seconds: withdraw / grant at once, show, a bulk import and SMS replies (both databases)."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from lifeloop.errors import DataError, NotFoundError
from lifeloop.execution import consent_changes, replies
from lifeloop.execution.bank_customers import BankCustomers
from lifeloop.execution.channels.base import Capabilities, Result
from lifeloop.execution.dispatch import drain, enqueue_lists
from lifeloop.store.lake import Lake
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import AuditEntry, ConsentChange, Dispatch, InboundReply
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

D = dt.date(2026, 3, 2)
T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)          # 10:00 in Shanghai
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def bank(tmp_path) -> BankCustomers:
    """A lake with one bank batch: three customers (two share a phone), all consenting to marketing SMS."""
    folder = tmp_path / "lake" / "bank" / f"as_of={D}"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"customer_id": ["C1", "C2", "C3"],
                             "mobile": ["13800000001", "13800000002", "13800000002"]}), folder / "customers.parquet")
    pq.write_table(pa.table({"customer_id": ["C1", "C2", "C3"], "purpose": ["marketing"] * 3, "channel": ["sms"] * 3,
                             "granted": [True] * 3}), folder / "consent.parquet")
    (folder / "_manifest.json").write_text("{}")
    return BankCustomers(Lake(tmp_path / "lake"))


class Recorder:
    capabilities = Capabilities()

    def __init__(self):
        self.sent: list[str] = []

    def send(self, batch):
        self.sent += [m.customer_id for m in batch]
        return [Result.sent(m) for m in batch]

    def close(self):
        pass


def one_sms_each() -> pa.Table:
    return pa.Table.from_pylist([dict(as_of=D, customer_id=c, strategy="s", wave="w", group="treated", status="contact",
                                      channel="sms", send_at=None, purpose="marketing", script_id=None, script_key=None,
                                      offer=None, priority=1, rm_id=None) for c in ("C1", "C2", "C3")])


def test_a_withdrawal_on_every_channel_holds_for_the_very_next_contact_and_is_audited(ops_db, bank):
    enqueue_lists(ops_db, one_sms_each(), operator="ops", now=T0)
    done = consent_changes.change(ops_db, bank, customer_id="C1", granted=False, channel="all", purpose="marketing",
                                  source="customer", reason="called the hotline", actor="agent7", now=T0)
    assert (done["channel"], done["effective_at"]) == ("*", T0)
    channel = Recorder()
    drain(ops_db, {"sms": channel}, baseline={(c, "marketing", "sms"): True for c in ("C1", "C2", "C3")},
          clock=lambda: T0 + SECOND)
    assert sorted(channel.sent) == ["C2", "C3"]
    with unit_of_work(ops_db) as s:
        entry = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "consent.withdraw")).one()
        assert (entry.actor, entry.target_id, entry.reason) == ("agent7", "C1", "called the hotline")
        assert "withdrawn for every channel" in s.scalar(sa.select(Dispatch.blocked_reason)
                                                         .where(Dispatch.customer_id == "C1"))


def test_a_change_without_reason_for_an_unknown_customer_on_a_misspelt_channel_names_every_problem(ops_db, bank):
    with pytest.raises(DataError) as err:
        consent_changes.change(ops_db, bank, customer_id="C9", granted=True, channel="smss", purpose="marketing",
                               source="customer", reason=" ", actor="agent7", now=T0)
    text = err.value.render()
    assert "did you mean 'sms'" in text and "C9 is not in the bank's customers extract" in text and "reason" in text
    with unit_of_work(ops_db) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ConsentChange)) == 0


def test_show_gives_each_permission_now_with_why_and_the_history(ops_db, bank):
    consent_changes.change(ops_db, bank, customer_id="C2", granted=False, channel="sms", purpose="marketing",
                           source="branch", reason="asked at the counter", actor="teller3", now=T0)
    report = consent_changes.show(ops_db, bank, "C2", at=T0 + SECOND)
    grid = {(p["purpose"], p["channel"]): p for p in report["permissions"]}
    assert not grid[("marketing", "sms")]["allowed"]
    assert grid[("marketing", "sms")]["reason"] == "marketing consent withdrawn for sms on 2026-03-02 (branch)"
    assert not grid[("marketing", "call")]["allowed"]             # never consented: opt-in
    assert grid[("service", "sms")]["allowed"]
    assert [(c["channel"], c["granted"], c["recorded_by"]) for c in report["changes"]] == [("sms", False, "teller3")]
    with pytest.raises(NotFoundError):
        consent_changes.show(ops_db, bank, "C404")


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


HEADER = "customer_id,channel,purpose,granted,effective_at,source,reason\n"


def test_a_bad_row_imports_nothing_and_names_file_row_and_column(ops_db, bank, tmp_path):
    path = write(tmp_path / "changes.csv", HEADER + "C1,sms,marketing,false,2026-03-01 09:00,branch,\n"
                                                  "C2,all,marketting,maybe,2026-03-01 09:00,branch,\n")
    with pytest.raises(DataError) as err:
        consent_changes.import_changes(ops_db, bank, path, actor="ops", now=T0)
    where = [(p.file, p.line, p.column) for p in err.value.problems]
    assert where == [("changes.csv", 3, "purpose"), ("changes.csv", 3, "granted")]
    assert "did you mean 'marketing'" in err.value.render()
    with unit_of_work(ops_db) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ConsentChange)) == 0


def test_importing_the_same_file_twice_records_each_change_once(ops_db, bank, tmp_path):
    path = write(tmp_path / "changes.csv", HEADER + "C1,sms,marketing,false,2026-03-01 09:00,branch,letter\n"
                                                  "C2,all,marketing,no,2026-03-01T09:00:00+08:00,complaint,\n")
    first = consent_changes.import_changes(ops_db, bank, path, actor="ops", now=T0)
    again = consent_changes.import_changes(ops_db, bank, path, actor="ops", now=T0)
    longer = write(tmp_path / "more.csv", path.read_text() + "C3,sms,marketing,true,2026-03-01 10:00,branch,\n")
    more = consent_changes.import_changes(ops_db, bank, longer, actor="ops", now=T0)
    assert (first.recorded, first.withdrawals, again.replayed, more.recorded, more.skipped) == (2, 2, True, 1, 2)
    with unit_of_work(ops_db) as s:
        rows = s.execute(sa.select(ConsentChange.customer_id, ConsentChange.channel, ConsentChange.effective_at)
                         .order_by(ConsentChange.customer_id)).all()
    assert rows == [("C1", "sms", dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)),
                    ("C2", "*", dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)),
                    ("C3", "sms", dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC))]


def test_an_sms_reply_opts_out_at_once_others_are_kept_for_review_and_an_unknown_mobile_is_reported(
        ops_db, bank, tmp_path):
    path = write(tmp_path / "replies.csv", "mobile,text,received_at\n"
                                           "13800000001, 退订 ,2026-03-02 09:59:58\n"
                                           "13800000002,请问利率多少?,2026-03-02 09:59:59\n"
                                           "13999999999,TD,2026-03-02 09:59:59\n")
    enqueue_lists(ops_db, one_sms_each(), operator="ops", now=T0)
    found = replies.read_file(path, timezone="Asia/Shanghai")
    done = replies.record(ops_db, bank, found, actor="gateway", now=T0)
    assert (done.opted_out, done.review, done.unmatched) == (1, 2, ["replies.csv:4: mobile 139****9999"])
    channel = Recorder()
    drain(ops_db, {"sms": channel}, baseline={(c, "marketing", "sms"): True for c in ("C1", "C2", "C3")},
          clock=lambda: T0)
    assert sorted(channel.sent) == ["C2", "C3"]
    again = replies.record(ops_db, bank, found, actor="gateway", now=T0)
    assert (again.opted_out, again.review, again.unmatched, again.skipped) == (0, 0, [], 4)
    with unit_of_work(ops_db) as s:
        kept = sorted(s.execute(sa.select(InboundReply.customer_id, InboundReply.outcome)).all(), key=str)
        change = s.scalars(sa.select(ConsentChange)).one()
    assert kept == [("C1", "opted_out"), ("C2", "review"), ("C3", "review"), (None, "unmatched")]
    assert (change.channel, change.purpose, change.granted, change.source) == ("sms", "marketing", False, "sms_reply")
    assert change.effective_at == T0 - 2 * SECOND


def test_a_shared_phone_that_replies_td_opts_out_every_customer_on_it(ops_db, bank):
    body = json.dumps({"mobile": "13800000002", "text": "ＴＤ", "received_at": "2026-03-02T02:00:00Z"})
    done = replies.record(ops_db, bank, [replies.parse_webhook(body)], actor="gateway", source="webhook", now=T0)
    assert done.opted_out == 2
    with unit_of_work(ops_db) as s:
        assert sorted(s.scalars(sa.select(ConsentChange.customer_id))) == ["C2", "C3"]


def test_a_replies_file_with_an_unreadable_row_records_nothing(ops_db, bank, tmp_path):
    path = write(tmp_path / "replies.csv", "mobile,text,received_at\n13800000001,TD,2026-03-02 09:00\n,TD,soon\n")
    with pytest.raises(DataError) as err:
        replies.read_file(path)
    assert [(p.file, p.row, p.column) for p in err.value.problems] == [
        ("replies.csv", 3, "mobile"), ("replies.csv", 3, "received_at")]
