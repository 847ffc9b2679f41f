"""The operations pages on the test bank (tests/web_world.py): runs and their steps, the day's lists counted with
drop reasons and drilled down, the outbox with an operator's decision on a contact of unknown outcome, approvals
with the four-eyes rule, the audit log searched (and the search audited) — each checked against the lake's files
and the operations database's rows, and refused to roles that have no business there."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from lifeloop.store.ops.models import Approval, AuditEntry, Dispatch
from lifeloop.web import operations
from tests.integration.test_worklists import publish
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import D, bank, client_for, csrf_now, sign_in, system  # noqa: F401 - fixture

D2 = D + dt.timedelta(days=1)


def row(customer: str, rm: str, status: str, channel: str | None, dropped_by: str | None = None,
        strategy: str = "wealth_churn_retention", wave: str = "w1") -> dict:
    return dict(as_of=D2, customer_id=customer, strategy=strategy, wave=wave,
                group="control" if status == "control" else "treated", cell=None, status=status, channel=channel,
                dropped_by=dropped_by, detail=f"rm: {dropped_by}" if dropped_by else None,
                reason="aum=123456.78", rm_id=rm)


DAY2 = [row("C001", "RM001", "contact", "rm"), row("C002", "RM002", "control", None),
        row("C003", "RM003", "dropped", None, "consent"), row("C004", "RM004", "dropped", None, "consent"),
        row("C005", "RM005", "dropped", None, "cap_overall_day"), row("C006", "RM006", "contact", "sms"),
        row("C001", "RM001", "dropped", None, "suitability", strategy="birthday_care")]


def signed(ws, clock, user):
    http = client_for(ws, clock)
    http.__enter__()
    assert sign_in(http, user).status_code == 303
    return http


def test_runs_show_each_day_and_its_steps_as_the_lake_recorded_them(bank):
    ws, clock = bank
    log = [json.loads(line) for line in (ws / "lake" / "_runs.jsonl").read_text().splitlines()]
    lists_run = next(e for e in log if e["area"] == "lists")
    http = signed(ws, clock, "bm1")
    days = http.get("/api/runs").json()["days"]
    assert [d["as_of"] for d in days] == [D.isoformat()]
    assert days[0]["steps"] == ["ingest", "plan"] and days[0]["publishes"] == len(log)
    one = http.get(f"/api/runs/{D}").json()
    plan = next(s for s in one["steps"] if s["area"] == "lists")
    assert (plan["step"], plan["run_id"], plan["publishes"][0]["run_id"]) == ("plan", lists_run["run_id"],
                                                                            lists_run["run_id"])
    page = http.get("/ops/runs").text
    assert f'href="/ops/runs/{D}"' in page and lists_run["run_id"] in http.get(f"/ops/runs/{D}").text
    assert http.get("/api/runs/2020-01-01").status_code == 404
    http.__exit__(None, None, None)
    http = signed(ws, clock, "rm1")
    assert http.get("/api/runs").status_code == 403 and http.get("/ops/runs").status_code == 403
    assert 'id="nav-ops"' not in http.get("/worklist").text
    http.__exit__(None, None, None)


def test_the_days_lists_are_counted_per_strategy_wave_and_channel_with_drop_reasons_in_the_readers_scope(bank,
                                                                                                         monkeypatch):
    ws, clock = bank
    publish(system(ws, clock).lake, "lists", {"lists": DAY2}, as_of=D2)
    http = signed(ws, clock, "analyst")
    doc = http.get("/api/lists", params={"as_of": D2.isoformat()}).json()
    assert doc["totals"] == {"contact": 2, "control": 1, "dropped": 4,
                             "dropped_by": {"consent": 2, "cap_overall_day": 1, "suitability": 1}}
    cells = {(c["strategy"], c["channel"]): c for c in doc["cells"]}
    assert cells[("wealth_churn_retention", "-")]["dropped_by"] == {"consent": 2, "cap_overall_day": 1}
    assert cells[("wealth_churn_retention", "-")]["control"] == 1 and cells[("birthday_care", "-")]["dropped"] == 1
    rows = http.get("/api/lists/rows", params={"as_of": D2.isoformat(), "status": "dropped",
                                               "dropped_by": "consent"}).json()
    assert [r["customer_id"] for r in rows["rows"]] == ["C003", "C004"] and rows["total"] == 2
    assert rows["rows"][0]["reason"] == "aum=100k-1m"   # an analyst sees money banded
    page = http.get("/ops/lists", params={"as_of": D2.isoformat()}).text
    assert "status=dropped&amp;dropped_by=consent" in page and 'id="nav-ops"' in page
    monkeypatch.setattr(operations, "ROWS", 1)
    one = http.get("/api/lists/rows", params={"as_of": D2.isoformat(), "status": "dropped"}).json()
    assert (one["shown"], one["total"], [r["customer_id"] for r in one["rows"]]) == (1, 4, ["C001"])
    page = http.get("/ops/lists/rows", params={"as_of": D2.isoformat(), "status": "dropped"}).text
    assert page.count("/ops/why?customer=") == 1
    http.__exit__(None, None, None)
    http = signed(ws, clock, "bm1")   # branch B01: C001..C003 only
    doc = http.get("/api/lists", params={"as_of": D2.isoformat()}).json()
    assert doc["scope"] == ["B01"] and doc["totals"]["dropped_by"] == {"consent": 1, "suitability": 1}
    rows = http.get("/api/lists/rows", params={"as_of": D2.isoformat(), "dropped_by": "consent"}).json()
    assert [r["customer_id"] for r in rows["rows"]] == ["C003"] and rows["rows"][0]["reason"] == "aum=123456.78"
    http.__exit__(None, None, None)


def test_an_unknown_contact_is_resolved_from_the_outbox_page_with_the_reason_audited(bank):
    ws, clock = bank
    with system(ws, clock).ops()() as s:
        item = s.scalars(sa.select(Dispatch).where(Dispatch.customer_id == "C004")).one()
        key = item.idempotency_key
        s.execute(sa.update(Dispatch).where(Dispatch.id == item.id).values(
            status="unknown", unknown_since=clock(), unknown_reason="provider timed out"))
        s.commit()
    http = signed(ws, clock, "analyst")
    doc = http.get("/api/outbox").json()
    assert [u["key"] for u in doc["unknown"]] == [key] and doc["unknown"][0]["customer_id"] == "C004"
    counts = {(c["channel"], c["status"]): c["contacts"] for c in doc["counts"]}
    assert counts == {("rm", "sent"): 5, ("rm", "unknown"): 1}
    page = http.get("/ops/outbox").text
    assert f'action="/ops/outbox/{key}/resolve"' in page and "provider timed out" in page
    done = http.post(f"/ops/outbox/{key}/resolve", data={"csrf": csrf_now(http, "/ops/outbox"), "outcome": "not-sent",
                                                        "resend": "1", "reason": "provider report: not delivered"})
    assert done.status_code == 303 and done.headers["location"] == f"/ops/outbox?done={key}"
    again = http.post(f"/api/outbox/{key}/resolve", headers={"X-CSRF-Token": csrf_now(http, "/ops/outbox")},
                      json={"outcome": "sent", "reason": "twice"})
    assert again.status_code == 422   # it is pending now: only an unknown contact is resolved
    http.__exit__(None, None, None)
    with system(ws, clock).ops()() as s:
        after = s.get(Dispatch, item.id)
        assert after.status == "pending"
        [entry] = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "outbox.resolve")).all()
        assert (entry.actor, entry.target_id, entry.reason) == ("analyst", key, "provider report: not delivered")
    http = signed(ws, clock, "compliance")   # compliance reads the audit log, not the outbox
    assert http.get("/api/outbox").status_code == 403
    assert http.post(f"/api/outbox/{key}/resolve", headers={"X-CSRF-Token": csrf_now(http, "/ops/audit")},
                     json={"outcome": "sent", "reason": "x"}).status_code == 403
    http.__exit__(None, None, None)


def hold(ws, clock, requested_by: str) -> tuple[int, int]:
    """A held contact (C001's) and a pending request for its strategy's send on D."""
    with system(ws, clock).ops()() as s:
        item = s.scalars(sa.select(Dispatch).where(Dispatch.customer_id == "C001")).one()
        item.status = "held"
        approval = Approval(as_of=D, kind="strategy_volume", scope="wealth_churn_retention", contacts=6, threshold=5,
                            status="pending", requested_by=requested_by, requested_at=clock())
        s.add(approval)
        s.commit()
        return item.id, approval.id


def test_an_approver_releases_a_held_send_from_the_approvals_page_and_never_their_own_request(bank):
    ws, clock = bank
    item, approval = hold(ws, clock, requested_by="approver")
    http = signed(ws, clock, "approver")
    [pending] = http.get("/api/approvals").json()["requests"]
    assert (pending["id"], pending["held_that_day"]) == (approval, 1)
    own = http.post(f"/api/approvals/{D}/decide", headers={"X-CSRF-Token": csrf_now(http, "/ops/approvals")},
                    json={"decision": "approve", "reason": "ok"})
    assert own.status_code == 422 and "four eyes" in own.json()["error"]
    http.__exit__(None, None, None)
    with system(ws, clock).ops()() as s:
        s.execute(sa.update(Approval).where(Approval.id == approval).values(requested_by="analyst"))
        s.commit()
    http = signed(ws, clock, "approver")
    page = http.get("/ops/approvals").text
    assert f'action="/ops/approvals/{D}/decide"' in page
    done = http.post(f"/ops/approvals/{D}/decide", data={"csrf": csrf_now(http, "/ops/approvals"),
                                                         "decision": "approve", "reason": "within budget",
                                                         "strategy": "wealth_churn_retention"})
    assert done.status_code == 303 and done.headers["location"] == f"/ops/approvals?done={D}"
    http.__exit__(None, None, None)
    with system(ws, clock).ops()() as s:
        assert s.get(Dispatch, item).status == "pending"
        decided = s.get(Approval, approval)
        assert (decided.status, decided.decided_by, decided.reason) == ("approved", "approver", "within budget")
        assert s.scalars(sa.select(AuditEntry.actor).where(AuditEntry.action == "approval.approve")).all() == [
            "approver"]
    http = signed(ws, clock, "compliance")   # reads approvals, decides none
    assert http.get("/api/approvals").status_code == 200 and "/decide" not in http.get("/ops/approvals").text
    assert http.post(f"/api/approvals/{D}/decide", headers={"X-CSRF-Token": csrf_now(http, "/ops/approvals")},
                     json={"decision": "reject", "reason": "no"}).status_code == 403
    http.__exit__(None, None, None)


def test_compliance_searches_the_audit_log_by_actor_action_subject_and_dates_and_the_search_is_audited(bank,
                                                                                                     monkeypatch):
    ws, clock = bank
    with system(ws, clock).ops()() as s:   # the workspace's owner added the users: user.add, user.password ...
        owner, by_admin = s.execute(sa.select(AuditEntry.actor, sa.func.count()).where(AuditEntry.action.like("user.%"))
                                    .group_by(AuditEntry.actor).order_by(sa.func.count().desc())).first()
    assert by_admin >= 12
    monkeypatch.setattr(operations, "PER_PAGE", 5)
    http = signed(ws, clock, "compliance")
    found = http.get("/api/audit", params={"actor": owner, "action": "user"}).json()
    assert (found["total"], found["pages"], len(found["entries"])) == (by_admin, -(-by_admin // 5), 5)
    ids = [e["id"] for e in found["entries"]]
    assert ids == sorted(ids, reverse=True)
    second = http.get("/api/audit", params={"actor": owner, "action": "user", "page": 2}).json()
    assert max(e["id"] for e in second["entries"]) < min(ids)
    signed_in = http.get("/api/audit", params={"action": "user.sign_in", "target": "compliance"}).json()
    assert signed_in["total"] >= 1 and {e["actor"] for e in signed_in["entries"]} == {"compliance"}
    later = http.get("/api/audit", params={"from": (D + dt.timedelta(days=2)).isoformat()}).json()
    assert later["total"] == 0
    assert http.get("/api/audit", params={"from": "2024-03-05", "to": "2024-03-01"}).status_code == 422
    assert http.get("/api/audit/verify").json()["ok"] is True
    page = http.get("/ops/audit", params={"actor": owner, "page": "2"}).text
    assert 'id="audit-verified"' in page and 'id="audit-prev"' in page
    http.__exit__(None, None, None)
    with system(ws, clock).ops()() as s:
        searches = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "audit.search")
                             .order_by(AuditEntry.id)).all()
    assert [e.actor for e in searches] == ["compliance"] * 5   # the refused period was no search
    assert searches[0].details == {"actor": owner, "action": "user", "page": 1, "matched": by_admin}
    for user in ("analyst", "bm1", "rm1", "approver"):
        http = signed(ws, clock, user)
        assert http.get("/api/audit").status_code == 403 and http.get("/ops/audit").status_code == 403
        http.__exit__(None, None, None)


def test_why_of_another_books_customer_is_the_same_404_as_an_unknown_one(bank):
    ws, clock = bank
    http = signed(ws, clock, "rm1")
    unknown = http.get("/api/why/C999")
    assert unknown.status_code == 404
    for other in ("C002", "C004"):
        assert http.get(f"/api/why/{other}").content == unknown.content
        assert http.get("/ops/why", params={"customer": other}).content == \
            http.get("/ops/why", params={"customer": "C999"}).content
    assert http.get("/ops/why").status_code == 200
    http.__exit__(None, None, None)
