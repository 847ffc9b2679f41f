"""Questions and feedback to a strategy's owner (营销人员问题反馈) on the test bank: an RM asks from their worklist,
head office answers, the RM follows up; the rows and the audit entries are in the operations database (the text
encrypted), and who reads what follows the asker's book: the RM their own, their branch manager the branch's, head
office all — another RM's question is the same 404 as one that does not exist."""

from __future__ import annotations

import sqlalchemy as sa

from lifeloop.store.ops.models import AuditEntry, StrategyThread, StrategyThreadPost
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import bank, client_for, csrf_now, sign_in, system  # noqa: F401 - fixture

STRATEGY = "wealth_churn_retention"
QUESTION = "客户王小明已在他行购买，话术中的到期提醒不适用"


def signed(ws, clock, user):
    http = client_for(ws, clock)
    http.__enter__()
    assert sign_in(http, user).status_code == 303
    return http


def test_an_rm_asks_head_office_answers_and_the_thread_is_kept_audited_and_encrypted(bank):
    ws, clock = bank
    rm = signed(ws, clock, "rm1")
    worklist = rm.get("/worklist").text
    assert f'href="/threads?strategy={STRATEGY}&amp;customer=C001"' in worklist
    form = rm.get("/threads", params={"strategy": STRATEGY, "customer": "C001"}).text
    assert 'value="C001"' in form and f'<option value="{STRATEGY}" selected>' in form
    asked = rm.post("/threads", data={"csrf": csrf_now(rm, "/threads"), "strategy": STRATEGY, "customer_id": "C001",
                                      "subject": "话术不适用", "text": QUESTION})
    assert asked.status_code == 303
    thread_id = int(asked.headers["location"].rsplit("/", 1)[1])
    rm.__exit__(None, None, None)
    analyst = signed(ws, clock, "analyst")
    assert [t["id"] for t in analyst.get("/api/threads", params={"strategy": STRATEGY}).json()["threads"]] == [
        thread_id]
    answer = analyst.post(f"/api/threads/{thread_id}/posts", headers={"X-CSRF-Token": csrf_now(analyst, "/threads")},
                          json={"text": "已调整：到期前 7 天才提醒"})
    assert answer.status_code == 200 and answer.json()["status"] == "answered"
    fragment = analyst.get(f"/threads/about/{STRATEGY}").text
    assert f'href="/threads/{thread_id}"' in fragment and "话术不适用" in fragment
    analyst.__exit__(None, None, None)
    rm = signed(ws, clock, "rm1")
    page = rm.get(f"/threads/{thread_id}").text
    assert "已调整：到期前 7 天才提醒" in page and 'id="reply"' in page
    follow = rm.post(f"/threads/{thread_id}/posts", data={"csrf": csrf_now(rm, "/threads"), "text": "谢谢"})
    assert follow.status_code == 303 and follow.headers["location"] == f"/threads/{thread_id}"
    rm.__exit__(None, None, None)
    with system(ws, clock).ops()() as s:
        thread = s.get(StrategyThread, thread_id)
        assert (thread.strategy_id, thread.asked_by, thread.rm_id, thread.branch_id, thread.customer_id,
                thread.status) == (STRATEGY, "rm1", "RM001", "B01", "C001", "open")
        assert [(p.author, p.body) for p in thread.posts] == [
            ("rm1", QUESTION), ("analyst", "已调整：到期前 7 天才提醒"), ("rm1", "谢谢")]
        raw = s.execute(sa.text("SELECT body FROM strategy_thread_posts ORDER BY id")).scalars().all()
        assert all(b.startswith("lle1:") and "王小明" not in b for b in raw)
        actions = s.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("thread.%"))
                            .order_by(AuditEntry.id)).all()
        assert actions == ["thread.ask", "thread.reply", "thread.follow_up"]


def test_who_reads_a_question_follows_the_askers_book_and_branch(bank):
    ws, clock = bank
    ids = {}
    for user in ("rm1", "rm4"):
        http = signed(ws, clock, user)
        done = http.post("/api/threads", headers={"X-CSRF-Token": csrf_now(http, "/threads")},
                         json={"strategy": STRATEGY, "subject": f"from {user}", "text": "名单里有已销户客户"})
        assert done.status_code == 200
        ids[user] = done.json()["id"]
        http.__exit__(None, None, None)
    seen = {"rm1": {ids["rm1"]}, "rm2": set(), "rm4": {ids["rm4"]}, "bm1": {ids["rm1"]}, "bm2": {ids["rm4"]},
            "analyst": set(ids.values()), "compliance": set(ids.values())}
    for user, expected in seen.items():
        http = signed(ws, clock, user)
        assert {t["id"] for t in http.get("/api/threads").json()["threads"]} == expected, user
        unknown = http.get("/api/threads/999")
        for other in set(ids.values()) - expected:
            assert http.get(f"/api/threads/{other}").content == unknown.content
            assert http.get(f"/threads/{other}").content == http.get("/threads/999").content
            write = http.post(f"/api/threads/{other}/posts", headers={"X-CSRF-Token": csrf_now(http, "/threads")},
                              json={"text": "x"})
            assert (write.status_code, write.content) == (404, unknown.content)
        http.__exit__(None, None, None)
    http = signed(ws, clock, "bm1")   # reads the branch's question, does not answer for head office
    refused = http.post(f"/api/threads/{ids['rm1']}/posts", headers={"X-CSRF-Token": csrf_now(http, "/threads")},
                        json={"text": "x"})
    assert refused.status_code == 403
    http.__exit__(None, None, None)
    http = signed(ws, clock, "approver")
    assert http.get("/api/threads").status_code == 403
    http.__exit__(None, None, None)
    with system(ws, clock).ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(StrategyThreadPost)) == 2


def test_a_question_about_another_books_customer_or_an_unknown_strategy_is_refused_and_nothing_is_kept(bank):
    ws, clock = bank
    http = signed(ws, clock, "rm1")
    token = csrf_now(http, "/threads")
    other = http.post("/api/threads", headers={"X-CSRF-Token": token},
                      json={"strategy": STRATEGY, "subject": "s", "text": "t", "customer_id": "C004"})
    unknown = http.post("/api/threads", headers={"X-CSRF-Token": token},
                        json={"strategy": STRATEGY, "subject": "s", "text": "t", "customer_id": "C999"})
    assert (other.status_code, other.content) == (404, unknown.content)
    assert http.post("/api/threads", headers={"X-CSRF-Token": token},
                     json={"strategy": "no_such", "subject": "s", "text": "t"}).status_code == 404
    empty = http.post("/api/threads", headers={"X-CSRF-Token": token},
                      json={"strategy": STRATEGY, "subject": "s", "text": "  "})
    assert empty.status_code == 422 and "write the question" in empty.json()["error"]
    http.__exit__(None, None, None)
    with system(ws, clock).ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(StrategyThread)) == 0
