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


def test_the_worklist_page_lists_the_rms_open_tasks_in_order_masked_for_the_reader(bank):
    """The 500-row page reads tasks as columns and renders its labels once (docs/performance.md): still the open
    tasks of the RM's own customers, most important first (then oldest due, then oldest), masked per reader,
    every field escaped."""
    import re

    from lifeloop.store.ops import tasks as tasks_store
    from lifeloop.store.ops.database import unit_of_work

    ws, clock = bank
    ctx = system(ws, clock)
    try:
        with unit_of_work(ctx.ops()) as s:
            made = {key: tasks_store.create_task(s, rm_id="RM001", customer_id=customer, title=title, due_on=due,
                                                 priority=priority, script=script, strategy_id="maturity_reinvestment",
                                                 wave=None).id
                    for key, customer, title, due, priority, script in (
                        ("late", "C001", "到期 late", D + dt.timedelta(days=2), 95, None),
                        ("early", "C001", "<b>到期</b> early", D - dt.timedelta(days=1), 95, "您好 <i>王</i>"),
                        ("low", "C001", "到期 low", D, 10, "低"),
                        ("theirs", "C002", "到期 theirs", D, 99, "not RM001's customer"),
                        ("done", "C001", "到期 done", D, 99, "done already"))}
            tasks_store.complete_task(s, rm_id="RM001", task_id=made["done"])
    finally:
        ctx.close()
    # by hand: priority 95 (due D-1, then D+2), the dispatched task (90), priority 10; C002 is RM002's, one is done
    order = [made["early"], made["late"], 1, made["low"]]
    shown = {"rm1": ("王小明", "13800000001"), "bm1": ("王小明", "13800000001"), "analyst": ("王*明", "138****0001")}
    for user, (name, mobile) in shown.items():
        with client_for(ws, clock) as http:
            sign_in(http, user)
            page = http.get("/worklist" if user == "rm1" else "/worklist?rm=RM001").text
            api = http.get("/api/worklist" if user == "rm1" else "/api/worklist?rm=RM001").json()["tasks"]
        assert [int(t) for t in re.findall(r'data-task="(\d+)"', page)] == order, user
        assert [t["task_id"] for t in api] == order, user
        assert {(t["name"], t["mobile"]) for t in api} == {(name, mobile)}, user
        assert page.count(f">{name}</a>") == 4 and page.count(f"C001 · {mobile}<") == 4, user
        assert user != "analyst" or "王小明" not in page
        assert "&lt;b&gt;到期&lt;/b&gt; early" in page and "您好 &lt;i&gt;王&lt;/i&gt;" in page and "<b>" not in page
        assert "theirs" not in page and "done already" not in page
        asks = page.count("/threads?strategy=maturity_reinvestment&amp;customer=C001")
        assert asks == (0 if user == "analyst" else 3), user


def test_the_server_leaves_what_lives_from_its_start_out_of_the_collectors_scans_until_it_stops(bank):
    """``lifeloop serve``'s app freezes what lives at start (a full scan of the process's objects cost 200-250 ms
    in the middle of a request), and undoes it at stop; the tests' apps do not (it costs ~0.5 s an app)."""
    import gc

    from fastapi.testclient import TestClient

    from lifeloop.api import create_app
    from lifeloop.context import Context

    ws, clock = bank
    gc.unfreeze()
    with client_for(ws, clock):
        assert gc.get_freeze_count() == 0
    app = create_app(lambda: Context(ws, clock=clock), decide=False, serving=True)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as http:
        frozen = gc.get_freeze_count()
        sign_in(http, "rm1")
        assert http.get("/worklist").status_code == 200
    assert frozen > 10_000 and gc.get_freeze_count() == 0
