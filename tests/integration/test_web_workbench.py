"""The RM workbench: today's worklist of the signed-in RM's own customers, the customer 360 masked per role, and
the marketing form writing the contact's outcome to the operations database — a refusal there is remembered,
and the next day's dispatch blocks that customer on that channel (the delivered log says so)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from lifeloop.execution.dispatch import dispatch
from lifeloop.store.ops.models import AuditEntry, Dispatch, Feedback, Lead, Task
from tests.integration.test_worklists import publish
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import D, bank, client_for, csrf_of, lists, local, sign_in, system  # noqa: F401 - fixture


def test_the_worklist_holds_the_rms_own_customers_with_the_script_and_the_reason(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        page = http.get("/worklist")
        api = http.get("/api/worklist").json()
    assert [t["customer_id"] for t in api["tasks"]] == ["C001"]
    task = api["tasks"][0]
    assert task["title"] and "经理1" in task["script"] and task["name"] == "王小明"
    assert 'href="/customers/C001"' in page.text and task["script"] in page.text
    for other in ("C002", "C003", "C004", "李华", "赵敏"):
        assert other not in page.text


def test_the_customer_360_is_masked_for_the_reader(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        own = http.get("/api/customers/C001").json()
        page = http.get("/customers/C001").text
    assert own["profile"]["attributes"]["name"] == "王小明" and own["profile"]["access"]["role"] == "rm"
    assert [t["task_id"] for t in own["tasks"]] == [1] and 'action="/tasks/1/outcome"' in page
    assert "<dt>客户号</dt>" in page and "<dt>手机号</dt>" in page and "拒绝（不再联系）" in page   # labelled in zh-CN
    with client_for(ws, clock) as http:
        sign_in(http, "analyst")
        masked = http.get("/api/customers/C001").json()
        page = http.get("/customers/C001").text
    assert masked["profile"]["attributes"]["name"] != "王小明" and "王小明" not in page
    assert "13800000001" not in page and masked["tasks"] == [] and "/outcome" not in page


def test_a_refusal_on_the_marketing_form_is_recorded_and_the_next_dispatch_honours_it(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        page = http.get("/customers/C001").text
        done = http.post("/tasks/1/outcome", data={"csrf": csrf_of(page), "outcome": "refused",
                                                    "note": "不需要理财，请勿再联系"})
        assert done.status_code == 303 and done.headers["location"] == "/worklist?done=1"
        after = http.get("/worklist").text
        assert 'id="no-tasks"' in after   # the task is done
    ctx = system(ws, clock)
    with ctx.ops()() as s:
        [fb] = s.scalars(sa.select(Feedback)).all()
        task = s.get(Task, 1)
        assert (fb.customer_id, fb.channel, fb.outcome, fb.recorded_by, fb.source, fb.dispatch_id) == (
            "C001", "rm", "refused", "rm1", "web", task.dispatch_id)
        assert fb.note == "不需要理财，请勿再联系" and task.status == "done"
        assert s.scalars(sa.select(AuditEntry.action).where(AuditEntry.action == "feedback.record",
                                                            AuditEntry.target_id == "C001")).all()
    # a week later (past the weekly RM cap) every customer is on the RM list again: C001 refused, so the gate
    # blocks them (refusal memory: 3 months on rm), the others are contacted
    nxt = D + dt.timedelta(days=8)
    publish(ctx.lake, "lists", lists(nxt), as_of=nxt)
    clock.at = local(nxt, 18)
    summary = dispatch(ctx, nxt)
    with ctx.ops()() as s:
        delivered = {d.customer_id: d for d in s.scalars(sa.select(Dispatch).where(Dispatch.as_of == nxt))}
    refused = delivered["C001"]
    assert refused.status == "blocked" and "refused rm on 2024-03-01 10:00 UTC" in refused.blocked_reason
    assert {c: d.status for c, d in delivered.items() if c != "C001"} == {f"C00{i}": "sent" for i in range(2, 7)}
    assert summary.sent == 5


def test_a_referral_creates_the_referred_persons_lead_for_the_rm(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        token = csrf_of(http.get("/worklist").text)
        answer = http.post("/api/tasks/1/outcome", headers={"X-CSRF-Token": token},
                           json={"outcome": "referral", "referred_name": "王大明", "referred_mobile": "13900000009"})
    assert answer.status_code == 200 and answer.json()["outcome"] == "referral"
    with system(ws, clock).ops()() as s:
        [lead] = s.scalars(sa.select(Lead)).all()
        assert (lead.name, lead.phone, lead.rm_id, lead.referred_by_customer_id) == ("王大明", "13900000009",
                                                                                      "RM001", "C001")


def test_a_wrong_outcome_is_refused_with_what_to_do_and_nothing_is_written(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        token = csrf_of(http.get("/worklist").text)
        answer = http.post("/api/tasks/1/outcome", headers={"X-CSRF-Token": token}, json={"outcome": "maybe"})
    assert answer.status_code == 422 and "invalid" in answer.json()["error"]
    with system(ws, clock).ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0
        assert s.get(Task, 1).status == "open"
