"""The access matrix, generated: every route of the OpenAPI description x every user of the test bank (2 branches
x 3 RMs, their branch managers, head office, an approver) x every customer, RM and task in it.

The expected answer comes from the bank's layout alone (an RM: their own customer; a branch manager: their
branch; head office: everyone), not from the code under test. Asserted: no read or write across books or
branches (0 cross-book answers with data, 0 feedback rows written), and "not yours" is the same bytes as
"not found" — for the API and for the pages.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from lifeloop.context import Context
from lifeloop.data.access import Principal, parse_grant
from lifeloop.store.ops.models import Feedback, Task
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import (  # noqa: F401 - fixture
    BRANCHES,
    CUSTOMER_OF,
    NAMES,
    RMS,
    USERS,
    D,
    bank,
    client_for,
    sign_in,
    system,
)

HEAD_OFFICE = {"admin", "analyst", "compliance"}
LEADERS = HEAD_OFFICE | {"bm1", "bm2"}
UNKNOWN = {"customer_id": "C999", "rm": "RM999", "task_id": "999", "strategy": "no_such_strategy",
           "as_of": "2020-01-01", "thread_id": "999"}
# the operations pages: which users' roles hold each page's permission (from docs/security.md, not from the code)
OPERATIONS = {"runs.read": HEAD_OFFICE | {"bm1", "bm2"}, "outbox.resolve": {"admin", "analyst"},
              "approvals.read": {"admin", "analyst", "compliance", "approver"}, "approvals.decide": {"approver"},
              "audit.read": {"admin", "compliance"}}


def rms_of(user: str) -> set[str]:
    """The RM books a user may read (from the layout, not from the code)."""
    if user in HEAD_OFFICE:
        return set(RMS)
    if user.startswith("rm"):
        return {f"RM00{user[2:]}"}
    if user.startswith("bm"):
        return set(BRANCHES[f"B0{user[2:]}"])
    return set()


def customers_of(user: str) -> set[str]:
    return {CUSTOMER_OF[rm] for rm in rms_of(user)}


def expected(user: str, path: str, values: dict[str, str], method: str = "GET") -> int:
    """200 for what the user may reach, 404 for another book's (as for what does not exist), 403 for a role
    that has no business there at all."""
    if path.startswith("/api/board"):
        if user not in LEADERS:
            return 403
        return 404 if values.get("strategy") == UNKNOWN["strategy"] else 200
    if path in ("/api/runs", "/api/lists", "/api/lists/rows"):
        return 200 if user in OPERATIONS["runs.read"] else 403
    if path == "/api/runs/{as_of}":
        if user not in OPERATIONS["runs.read"]:
            return 403
        return 404 if values["as_of"] == UNKNOWN["as_of"] else 200
    if path == "/api/outbox":
        return 200 if user in OPERATIONS["outbox.resolve"] else 403
    if path == "/api/outbox/{key}/resolve":   # the bad outcome is the refusal of those who may resolve
        return 422 if user in OPERATIONS["outbox.resolve"] else 403
    if path == "/api/approvals":
        return 200 if user in OPERATIONS["approvals.read"] else 403
    if path == "/api/approvals/{as_of}/decide":
        return 422 if user in OPERATIONS["approvals.decide"] else 403
    if path in ("/api/audit", "/api/audit/verify"):
        return 200 if user in OPERATIONS["audit.read"] else 403
    if path == "/api/why/{customer_id}":
        # the test bank stores no audiences, so no day can be replayed: every answer is the one 404 (the replay
        # itself: test_web_operations.py) — and another book's customer gets exactly those bytes; an approver
        # reads no customer at all
        return 403 if user == "approver" else 404
    if path.startswith("/api/threads"):
        if user == "approver":
            return 403
        if path == "/api/threads":
            return 200 if method == "GET" else (404 if user[:2] in ("rm", "bm") else 403)   # no such strategy
        if values["thread_id"] == UNKNOWN["thread_id"] or values["thread_rm"] not in rms_of(user):
            return 404
        if path == "/api/threads/{thread_id}":
            return 200
        mine = user.startswith("rm") and values["thread_rm"] == f"RM00{user[2:]}"
        return 422 if user in ("admin", "analyst") or mine else 403   # the missing text is the refusal
    if path.startswith("/api/strategies"):
        return strategies_expected(user, path, values)
    if path in ("/api/kpis", "/api/daily-sales", "/exports/board.xlsx", "/exports/daily-sales.xlsx"):
        return 200 if user in LEADERS else 403   # a branch manager: their branch's figures (test_web_board_views)
    if user == "approver":
        return 403
    if path == "/api/customers/{customer_id}":
        return 200 if values["customer_id"] in customers_of(user) else 404
    if path in ("/api/worklist", "/api/leads"):
        return 200 if values["rm"] in rms_of(user) else 404
    if path == "/api/tasks/{task_id}/outcome":
        if not user.startswith("rm"):
            return 403
        return 422 if values["task_id"] == values["own_task"] else 404   # own: the bad outcome is the refusal
    raise AssertionError(f"a route the matrix does not know: {path} (add its expectation here)")


EDITORS = {"admin", "analyst", "bm1", "bm2"}


def strategies_expected(user: str, path: str, values: dict[str, str]) -> int:
    """The strategy editor: readers (not RMs) read the map; editors draft and check (the matrix's body has no
    definition: 200 with its problems, nothing saved); a checker decides; nothing here has version 999."""
    if user.startswith("rm"):
        return 403
    unknown = values.get("strategy") == UNKNOWN["strategy"]
    if path in ("/api/strategies/{strategy}/preview", "/api/strategies/{strategy}/drafts"):
        return 200 if user in EDITORS else 403
    if path.endswith("/{action}"):
        needed = EDITORS if values["action"] in ("submit", "revert") else {"approver"}
        return 404 if user in needed else 403
    if path == "/api/strategies":
        return 200
    return 404 if unknown else 200


def cases(openapi: dict, tasks: dict[str, str], strategies: list[str], threads: dict[str, str]):
    """(method, path template, concrete URL, values) for every route x every thing it can name."""
    for path, methods in sorted(openapi["paths"].items()):
        if path in ("/events", "/health"):
            continue   # service-token intake and liveness: not a user's route
        for method in methods:
            if path == "/api/customers/{customer_id}":
                things = [{"customer_id": c} for c in [*sorted(NAMES), UNKNOWN["customer_id"]]]
            elif path in ("/api/worklist", "/api/leads"):
                things = [{"rm": rm} for rm in [*sorted(RMS), UNKNOWN["rm"]]]
            elif path == "/api/tasks/{task_id}/outcome":
                things = [{"task_id": t} for t in [*sorted(tasks.values()), UNKNOWN["task_id"]]]
            elif path.endswith("/{version}/{action}"):
                things = [{"strategy": s, "version": "999", "action": a} for s in [*strategies, UNKNOWN["strategy"]]
                          for a in ("submit", "approve", "reject", "revert")]
            elif path.startswith("/api/strategies/{strategy}"):
                things = [{"strategy": s} for s in [*strategies, UNKNOWN["strategy"]]]
            elif path == "/api/board/{strategy}":
                things = [{"strategy": s} for s in [*strategies, UNKNOWN["strategy"]]]
            elif path == "/api/why/{customer_id}":
                things = [{"customer_id": c} for c in [*sorted(NAMES), UNKNOWN["customer_id"]]]
            elif path in ("/api/runs/{as_of}", "/api/approvals/{as_of}/decide"):
                things = [{"as_of": d} for d in [D.isoformat(), UNKNOWN["as_of"]]]
            elif path == "/api/outbox/{key}/resolve":
                things = [{"key": "0" * 64}]
            elif "{thread_id}" in path:
                things = [{"thread_id": t, "thread_rm": rm} for rm, t in sorted(threads.items())] + [
                    {"thread_id": UNKNOWN["thread_id"], "thread_rm": ""}]
            else:
                things = [{}]
            for values in things:
                url = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], path)
                if path in ("/api/worklist", "/api/leads"):
                    url += f"?rm={values['rm']}"
                if path == "/api/lists/rows":
                    url += f"?as_of={D}"
                yield method.upper(), path, url, values


def ask(ws, clock, rm: str) -> str:
    """A question to the owner of wealth_churn_retention by the RM of ``rm``'s book, about their customer."""
    ctx = Context(ws, principal=Principal(f"rm{rm[-1]}", rm, (parse_grant(f"rm={rm}"),)), clock=clock)
    try:
        return str(ctx.ask_owner("wealth_churn_retention", subject="名单疑问", text="客户已销户",
                                 customer_id=CUSTOMER_OF[rm])["id"])
    finally:
        ctx.close()


def test_no_user_reads_or_writes_outside_their_book_or_branch_and_not_yours_looks_like_not_found(bank):
    ws, clock = bank
    with system(ws, clock).ops()() as s:
        tasks = {t.rm_id: str(t.id) for t in s.scalars(sa.select(Task))}
    strategies = ["birthday_care", "maturity_reinvestment"]
    threads = {rm: ask(ws, clock, rm) for rm in ("RM001", "RM004")}   # a question from each branch
    seen, leaks, not_equal, unknown_answers = 0, [], [], {}
    for user in USERS:
        with client_for(ws, clock) as http:
            assert sign_in(http, user).status_code == 303
            page = http.get("/worklist" if user.startswith("rm") or user in LEADERS else "/board")
            token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
            headers = {"X-CSRF-Token": token.group(1)} if token else {}
            own_task = tasks.get(f"RM00{user[2:]}") if user.startswith("rm") else None
            for method, path, url, values in cases(http.app.openapi(), tasks, strategies, threads):
                answer = (http.post(url, headers=headers, json={"outcome": "not-an-outcome"}) if method == "POST"
                          else http.get(url))
                want = expected(user, path, {**values, "own_task": own_task}, method)
                seen += 1
                if answer.status_code != want:
                    leaks.append((user, method, url, answer.status_code, want))
                if answer.status_code == 200:
                    foreign = {NAMES[c] for c in NAMES if c not in customers_of(user)} | \
                              {c for c in NAMES if c not in customers_of(user)}
                    if user not in HEAD_OFFICE and any(f in answer.text for f in foreign):
                        leaks.append((user, method, url, "shows another book's customer"))
                if want == 404:
                    unknown = unknown_answers.setdefault((user, path), None)
                    if unknown is None:
                        concrete = {k: UNKNOWN.get(k, v) for k, v in values.items() if k != "thread_rm"}
                        target = re.sub(r"\{(\w+)\}", lambda m, v=concrete: v[m.group(1)], path)
                        if path in ("/api/worklist", "/api/leads"):
                            target += f"?rm={UNKNOWN['rm']}"
                        ref = (http.post(target, headers=headers, json={"outcome": "not-an-outcome"})
                               if method == "POST" else http.get(target))
                        unknown_answers[(user, path)] = unknown = (ref.status_code, ref.content)
                    if (answer.status_code, answer.content) != unknown:
                        not_equal.append((user, url))
    assert seen >= len(USERS) * 20
    assert leaks == []
    assert not_equal == []
    with system(ws, clock).ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0


def test_the_pages_refuse_another_books_customer_with_the_same_bytes_as_an_unknown_one(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        unknown = http.get("/customers/C999")
        for other in ("C002", "C004"):
            theirs = http.get(f"/customers/{other}")
            assert (theirs.status_code, theirs.content) == (unknown.status_code, unknown.content) == (
                404, unknown.content)
        assert http.get("/customers/C001").status_code == 200
        worklist_unknown = http.get("/worklist", params={"rm": "RM999"})
        assert http.get("/worklist", params={"rm": "RM002"}).content == worklist_unknown.content
    with client_for(ws, clock) as http:
        sign_in(http, "bm1")
        assert http.get("/customers/C003").status_code == 200
        assert http.get("/customers/C004").content == http.get("/customers/C999").content
