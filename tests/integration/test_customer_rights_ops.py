"""The customer's rights in the operations database (SQLite and PostgreSQL): the personalisation opt-out with its
history, tag-deletion requests, purge with keyed-hash suppressions, matching a later batch, and the audit rows of
every change (rights, do-not-disturb, imported consent, config going live)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
import sqlalchemy as sa

from lifeloop.errors import DataError
from lifeloop.execution import consent_changes
from lifeloop.execution.bank_customers import BankCustomers
from lifeloop.store.ops import config_changes, consent, rights
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import (
    AuditEntry,
    ConsentChange,
    Dispatch,
    DoNotDisturb,
    Feedback,
    InboundReply,
    Lead,
    MarketingSuppressed,
    PersonalisationChange,
    RightsRequest,
    Suppression,
    Task,
)
from lifeloop.store.suppression import digest
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)
KEY = bytes(range(32))


class HashKeys:
    """A key manager's keyed hash under a fixed key (the purpose left out, so digests can be checked by hand)."""

    def keyed_hash(self, purpose: str, value: str) -> str:
        assert purpose == "suppression"
        return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()


KEYS = HashKeys()


def audit_rows(factory, action_prefix: str) -> list[tuple]:
    with factory() as s:
        return [(e.actor, e.action, e.target_id, e.reason, e.result) for e in
                s.scalars(sa.select(AuditEntry).where(AuditEntry.action.startswith(action_prefix))
                          .order_by(AuditEntry.id))]


def test_the_personalisation_opt_out_keeps_its_history_and_the_latest_change_at_a_time_wins(ops_db):
    with unit_of_work(ops_db) as s:
        rights.set_personalisation(s, customer_id="C1", opted_out=True, source="app", reason="asked in the app",
                                   actor="rm7", at=T0)
        rights.set_personalisation(s, customer_id="C2", opted_out=True, source="branch", reason="form", actor="rm7",
                                   at=T0)
        rights.set_personalisation(s, customer_id="C1", opted_out=False, source="customer", reason="opted back in",
                                   actor="rm8", at=T0 + 2 * HOUR)
    with ops_db() as s:
        assert rights.opted_out(s, at=T0 - HOUR) == set()
        assert rights.opted_out(s, at=T0 + HOUR) == {"C1", "C2"}
        assert rights.opted_out(s, at=T0 + 3 * HOUR) == {"C2"}
        assert rights.opted_out(s, at=T0 + 3 * HOUR, customer_ids=["C1"]) == set()
        assert rights.flags(s, customer_ids=["C1", "C2", "C3"], at=T0 + HOUR) == {
            "C1": {"no_personalisation"}, "C2": {"no_personalisation"}}
        history = s.scalars(sa.select(PersonalisationChange).order_by(PersonalisationChange.id)).all()
        assert [(c.customer_id, c.opted_out, c.source, c.recorded_by) for c in history] == [
            ("C1", True, "app", "rm7"), ("C2", True, "branch", "rm7"), ("C1", False, "customer", "rm8")]
    assert audit_rows(ops_db, "rights.no_personalisation") == [
        ("rm7", "rights.no_personalisation.set", "C1", "asked in the app", "ok"),
        ("rm7", "rights.no_personalisation.set", "C2", "form", "ok"),
        ("rm8", "rights.no_personalisation.clear", "C1", "opted back in", "ok")]


def test_a_change_without_a_reason_is_refused_before_anything_is_written(ops_db):
    with pytest.raises(DataError) as err, unit_of_work(ops_db) as s:
        rights.set_personalisation(s, customer_id="C1", opted_out=True, source="app", reason="  ", actor="rm7")
    assert "reason" in err.value.render() and "--reason" in err.value.render()
    with ops_db() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(PersonalisationChange)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_a_tag_deletion_request_names_the_customer_for_every_derived_snapshot_until_applied_and_after(ops_db):
    with unit_of_work(ops_db) as s:
        first = rights.request_tag_deletion(s, customer_id="C1", reason="customer letter 2026-03-01", actor="cs1",
                                            at=T0)
    with ops_db() as s:
        assert rights.tags_deleted(s) == {"C1"}
        assert [r.id for r in rights.pending(s, "delete_tags")] == [first.id]
    with unit_of_work(ops_db) as s:
        rights.mark_applied(s, requests=rights.pending(s, "delete_tags"), actor="ops", details={"rows": 3}, at=T0)
    with ops_db() as s:
        assert rights.pending(s, "delete_tags") == [] and rights.tags_deleted(s) == {"C1"}
        shown = rights.rights_of(s, "C1", at=T0)
        assert shown["tags_deleted"] and [(r["kind"], r["status"], r["details"]) for r in shown["requests"]] == [
            ("delete_tags", "applied", {"rows": 3})]
    assert audit_rows(ops_db, "rights.delete_tags") == [
        ("cs1", "rights.delete_tags.request", "C1", "customer letter 2026-03-01", "ok")]


def _customer_with_history(factory, who: str = "C9") -> None:
    with unit_of_work(factory) as s:
        d = Dispatch(idempotency_key=f"k-{who}", as_of=T0.date(), customer_id=who, strategy_id="s", wave="w",
                     channel="sms", status="sent", payload={"script": "Dear Wang"})
        other = Dispatch(idempotency_key="k-other", as_of=T0.date(), customer_id="C1", strategy_id="s", wave="w",
                         channel="sms", status="sent")
        s.add_all([d, other])
        s.flush()
        lead = Lead(name="Friend", phone="13900000000", referred_by_customer_id=who)
        s.add(lead)
        s.flush()
        s.add_all([
            Feedback(dispatch_id=d.id, customer_id=who, channel="sms", outcome="referral", occurred_at=T0,
                     recorded_by="rm", referred_lead_id=lead.id),
            Task(rm_id="RM1", customer_id=who, dispatch_id=d.id, title="call", due_on=T0.date()),
            ConsentChange(customer_id=who, purpose="marketing", channel="*", granted=False, effective_at=T0,
                          source="customer", recorded_by="rm"),
            DoNotDisturb(customer_id=who, reason="complaint", starts_at=T0, created_by="cc"),
            InboundReply(channel="sms", customer_id=None, mobile="+86 138 1234 5678", text="TD", received_at=T0,
                         outcome="unmatched", source="file", idempotency_key="r1"),
            InboundReply(channel="sms", customer_id=None, mobile="13900000000", text="hi", received_at=T0,
                         outcome="unmatched", source="file", idempotency_key="r2"),
            PersonalisationChange(customer_id=who, opted_out=True, effective_at=T0, source="app", recorded_by="rm",
                                  reason="x"),
            RightsRequest(customer_id=who, kind="delete_tags", reason="asked", requested_by="cs"),
        ])


def test_a_purge_deletes_the_customers_rows_keeps_only_keyed_hashes_and_audits_the_id_and_hash(ops_db):
    _customer_with_history(ops_db)
    digests = {"customer_id": digest(KEYS, "customer_id", "C9"),
               "id_number": digest(KEYS, "id_number", "11010519491231002x"),
               "mobile": digest(KEYS, "mobile", "+86 138-1234-5678")}
    # the keyed hash is HMAC-SHA256 of "kind:normalised value" under the key, computed here independently
    assert digests["mobile"] == hmac.new(KEY, b"mobile:13812345678", hashlib.sha256).hexdigest()
    assert digests["id_number"] == hmac.new(KEY, b"id_number:11010519491231002X", hashlib.sha256).hexdigest()
    with unit_of_work(ops_db) as s:
        request, counts = rights.purge_customer(s, customer_id="C9", digests=digests, actor="dpo",
                                                reason="closed 2025, retention over", mobile="13812345678", at=T0)
    assert counts == {"feedback": 1, "tasks": 1, "contact_ledger": 0, "dispatches": 1, "inbound_replies": 1,
                      "consent_changes": 1, "do_not_disturb": 1, "personalisation_changes": 1,
                      "marketing_suppressed": 0, "events": 0, "moments": 0, "moment_decisions": 0, "timers": 0,
                      "leads_unlinked": 1}   # real-time rows: tests/integration/test_realtime_purge.py
    with ops_db() as s:
        for model in (Dispatch, Feedback, Task, ConsentChange, DoNotDisturb, PersonalisationChange):
            assert "C9" not in set(s.scalars(sa.select(model.customer_id))), model.__tablename__
        assert s.scalars(sa.select(Dispatch.customer_id)).all() == ["C1"]        # other customers untouched
        assert s.scalars(sa.select(InboundReply.mobile)).all() == ["13900000000"]   # someone else's reply stays
        assert s.scalars(sa.select(Lead.referred_by_customer_id)).all() == [None]
        requests = s.scalars(sa.select(RightsRequest).order_by(RightsRequest.id)).all()
        token = f"purged:{digests['customer_id']}"
        assert [(r.customer_id, r.kind, r.status) for r in requests] == [
            (token, "delete_tags", "pending"), (token, "purge", "applied")]
        assert sorted((x.kind, x.digest, x.request_id) for x in s.scalars(sa.select(Suppression))) == sorted(
            (k, v, request.id) for k, v in digests.items())
        entry = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "rights.purge")).one()
        assert (entry.actor, entry.target_id, entry.details["customer_hash"]) == ("dpo", "C9", digests["customer_id"])
        # nothing personal beyond the id and its hash: no mobile, no ID number, in the audit entry
        assert "13812345678" not in str(entry.details) and "1101051949" not in str(entry.details)


def test_a_later_batch_that_brings_a_purged_person_back_under_another_number_is_matched_and_audited(ops_db):
    with unit_of_work(ops_db) as s:
        rights.purge_customer(s, customer_id="C9", reason="retention over", actor="dpo", at=T0,
                              digests={"customer_id": digest(KEYS, "customer_id", "C9"), "id_number": None,
                                       "mobile": digest(KEYS, "mobile", "13812345678")})
    batch = {"C9": None, "N1": "138 1234 5678", "N2": "13900000000"}   # C9 again; N1: same mobile, a new number
    found = {who: {k: digest(KEYS, k, who if k == "customer_id" else m) for k in ("customer_id", "id_number", "mobile")}
             for who, m in batch.items()}
    with unit_of_work(ops_db) as s:
        matched = rights.match_suppressed(s, digests=found, batch_as_of=T0.date(), actor="ingest")
    assert matched == {"C9": ["customer_id"], "N1": ["mobile"]}
    with unit_of_work(ops_db) as s:   # the same batch again: nothing new recorded or audited
        rights.match_suppressed(s, digests=found, batch_as_of=T0.date(), actor="ingest")
    with ops_db() as s:
        assert rights.suppressed(s) == {"C9", "N1"}
        assert rights.flags(s, customer_ids=["N1", "N2"]) == {"N1": {"suppressed"}}
        assert {m.customer_id: m.matched_on for m in s.scalars(sa.select(MarketingSuppressed))} == {
            "C9": "customer_id", "N1": "mobile"}
    assert audit_rows(ops_db, "rights.suppressed") == [("ingest", "rights.suppressed.match", "C9", None, "ok"),
                                                       ("ingest", "rights.suppressed.match", "N1", None, "ok")]


def test_do_not_disturb_added_and_lifted_is_audited(ops_db):
    with unit_of_work(ops_db) as s:
        entry = consent.add_do_not_disturb(s, customer_id="C1", reason="complaint 42", created_by="cc1", starts_at=T0,
                                           channel="call")
        consent.lift_do_not_disturb(s, entry_id=entry.id, lifted_by="cc2", reason="resolved", at=T0 + HOUR)
    assert audit_rows(ops_db, "dnd.") == [("cc1", "dnd.add", "C1", "complaint 42", "ok"),
                                          ("cc2", "dnd.lift", "C1", "resolved", "ok")]


def test_each_imported_consent_change_is_on_the_customers_audit_trail(ops_db, tmp_path):
    path = tmp_path / "consent.csv"
    path.write_text("customer_id,channel,purpose,granted,effective_at,source,reason\n"
                    "C1,sms,marketing,false,2026-03-01 10:00,branch,form 7\n"
                    "C2,all,marketing,true,2026-03-01 11:00,app,\n", encoding="utf-8")

    class Everyone(BankCustomers):
        def __init__(self):
            pass

        @property
        def available(self):
            return False

    consent_changes.import_changes(ops_db, Everyone(), path, actor="ops1", now=T0)
    assert audit_rows(ops_db, "consent.") == [
        ("ops1", "consent.withdraw", "C1", "form 7", "ok"),
        ("ops1", "consent.grant", "C2", "imported from consent.csv:3", "ok"),
        ("ops1", "consent.import", "consent.csv", "2 consent changes imported", "ok")]


def test_config_that_goes_live_is_audited_once_per_change_with_its_files_and_hashes(ops_db):
    with unit_of_work(ops_db) as s:
        first = config_changes.record_if_changed(s, files={"strategies.yaml": "aaa", "tags.yaml": "bbb"}, actor="ops",
                                                 run="2026-03-02 features,plan")
        same = config_changes.record_if_changed(s, files={"strategies.yaml": "aaa"}, actor="ops", run="again")
        changed = config_changes.record_if_changed(s, files={"strategies.yaml": "ccc", "tags.yaml": "bbb"},
                                                   actor="alice", run="2026-03-03 plan")
    assert (first, same, changed) == ({"strategies.yaml": "aaa", "tags.yaml": "bbb"}, {}, {"strategies.yaml": "ccc"})
    with ops_db() as s:
        entries = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "config.live")
                            .order_by(AuditEntry.id)).all()
        assert [(e.actor, e.target_id, e.details["changed"], e.details.get("previous")) for e in entries] == [
            ("ops", "strategies.yaml,tags.yaml", {"strategies.yaml": "aaa", "tags.yaml": "bbb"}, {}),
            ("alice", "strategies.yaml", {"strategies.yaml": "ccc"}, {"strategies.yaml": "aaa"})]
        assert entries[-1].details["live"] == {"strategies.yaml": "ccc", "tags.yaml": "bbb"}
