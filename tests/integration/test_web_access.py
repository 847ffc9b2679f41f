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

from lifeloop.store.ops.models import Feedback, Task
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import (  # noqa: F401 - fixture
    BRANCHES,
    CUSTOMER_OF,
    NAMES,
    RMS,
    USERS,
    bank,
    client_for,
    sign_in,
    system,
)

HEAD_OFFICE = {"admin", "analyst", "compliance"}
LEADERS = HEAD_OFFICE | {"bm1", "bm2"}
UNKNOWN = {"customer_id": "C999", "rm": "RM999", "task_id": "999", "strategy": "no_such_strategy"}


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


def expected(user: str, path: str, values: dict[str, str]) -> int:
    """200 for what the user may reach, 404 for another book's (as for what does not exist), 403 for a role
    that has no business there at all."""
    if path.startswith("/api/board"):
        if user not in LEADERS:
            return 403
        return 404 if values.get("strategy") == UNKNOWN["strategy"] else 200
    if path in ("/api/kpis", "/api/daily-sales", "/exports/board.xlsx", "/exports/daily-sales.xlsx"):
        return 200 if user in LEADERS else 403   # a branch manager: their branch's figures (test_web_board_views)
    if user == "approver":
        return 403
    if path == "/api/customers/{customer_id}":
        return 200 if values["customer_id"] in customers_of(user) else 404
    if path == "/api/worklist":
        return 200 if values["rm"] in rms_of(user) else 404
    if path == "/api/tasks/{task_id}/outcome":
        if not user.startswith("rm"):
            return 403
        return 422 if values["task_id"] == values["own_task"] else 404   # own: the bad outcome is the refusal
    raise AssertionError(f"a route the matrix does not know: {path} (add its expectation here)")


def cases(openapi: dict, tasks: dict[str, str], strategies: list[str]):
    """(method, path template, concrete URL, values) for every route x every thing it can name."""
    for path, methods in sorted(openapi["paths"].items()):
        if path in ("/events", "/health"):
            continue   # service-token intake and liveness: not a user's route
        for method in methods:
            if path == "/api/customers/{customer_id}":
                things = [{"customer_id": c} for c in [*sorted(NAMES), UNKNOWN["customer_id"]]]
            elif path == "/api/worklist":
                things = [{"rm": rm} for rm in [*sorted(RMS), UNKNOWN["rm"]]]
            elif path == "/api/tasks/{task_id}/outcome":
                things = [{"task_id": t} for t in [*sorted(tasks.values()), UNKNOWN["task_id"]]]
            elif path == "/api/board/{strategy}":
                things = [{"strategy": s} for s in [*strategies, UNKNOWN["strategy"]]]
            else:
                things = [{}]
            for values in things:
                url = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], path)
                if path == "/api/worklist":
                    url += f"?rm={values['rm']}"
                yield method.upper(), path, url, values


def test_no_user_reads_or_writes_outside_their_book_or_branch_and_not_yours_looks_like_not_found(bank):
    ws, clock = bank
    with system(ws, clock).ops()() as s:
        tasks = {t.rm_id: str(t.id) for t in s.scalars(sa.select(Task))}
    strategies = ["birthday_care", "maturity_reinvestment"]
    seen, leaks, not_equal, unknown_answers = 0, [], [], {}
    for user in USERS:
        with client_for(ws, clock) as http:
            assert sign_in(http, user).status_code == 303
            page = http.get("/worklist" if user.startswith("rm") or user in LEADERS else "/board")
            token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
            headers = {"X-CSRF-Token": token.group(1)} if token else {}
            own_task = tasks.get(f"RM00{user[2:]}") if user.startswith("rm") else None
            for method, path, url, values in cases(http.app.openapi(), tasks, strategies):
                answer = (http.post(url, headers=headers, json={"outcome": "not-an-outcome"}) if method == "POST"
                          else http.get(url))
                want = expected(user, path, {**values, "own_task": own_task})
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
                        concrete = {k: UNKNOWN.get(k, v) for k, v in values.items()}
                        target = re.sub(r"\{(\w+)\}", lambda m, v=concrete: v[m.group(1)], path)
                        if path == "/api/worklist":
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
