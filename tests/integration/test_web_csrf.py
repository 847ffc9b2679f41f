"""Every state-changing route of the app refuses a request without this browser's CSRF token (403, nothing
written): the routes are read from ``app.routes``, so a route added later is covered without editing this."""

from __future__ import annotations

import re

import sqlalchemy as sa

from lifeloop.store.ops.models import Feedback, StrategyVersion, WebSession
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import PASSWORD, D, bank, client_for, csrf_now, sign_in, system  # noqa: F401 - fixture

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# POST /events is for event sources, authenticated by a bearer token and never by a cookie: a browser's
# session gets nowhere there (asserted below), so there is nothing for a forged form to ride on
NOT_COOKIE_AUTHENTICATED = {"/events"}


def state_changing_routes(app) -> list[tuple[str, str]]:
    return sorted((m, r.path) for r in app.routes for m in getattr(r, "methods", None) or ()
                  if m in STATE_CHANGING and r.path not in NOT_COOKIE_AUTHENTICATED)


def concrete(path: str) -> str:
    # task 1 is rm1's own task, birthday_care a strategy of the map, a day and a contact key that parse: only the
    # token is missing
    values = {"task_id": "1", "strategy": "birthday_care", "version": "1", "action": "approve",
              "as_of": D.isoformat(), "thread_id": "1", "key": "0" * 64}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_every_state_changing_route_refuses_a_request_without_a_valid_csrf_token(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        routes = state_changing_routes(http.app)
        # the ones there are today; new ones join the loop by themselves
        assert {p for _, p in routes} >= {"/sign-in", "/sign-out", "/language", "/tasks/{task_id}/outcome",
                                          "/api/tasks/{task_id}/outcome"}
        sign_in(http, "rm1")
        good = csrf_now(http)
        refused = {}
        for method, path in routes:
            for token in (None, "0" * 64, good[:-1] + ("0" if good[-1] != "0" else "1")):
                headers = {"X-CSRF-Token": token} if token else {}
                answer = http.request(method, concrete(path), headers=headers,
                                      data={"outcome": "refused", "user": "rm1", "password": PASSWORD, "lang": "en"})
                refused[(method, path, token)] = answer.status_code
        assert set(refused.values()) == {403}, {k: v for k, v in refused.items() if v != 403}
        # and nothing was written: no feedback, the session still live (sign-out refused), no new session
        assert http.get("/api/worklist").status_code == 200
        # the bearer-token route pays no attention to the session cookie
        assert http.post("/events", json=[]).status_code == 401
    with system(ws, clock).ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(StrategyVersion)) == 0
        assert [r.revoked_at for r in s.scalars(sa.select(WebSession))] == [None]


def test_the_token_of_one_session_is_no_good_for_another(bank):
    ws, clock = bank
    with client_for(ws, clock) as a, client_for(ws, clock) as b:
        sign_in(a, "rm1")
        sign_in(b, "rm1")
        token_a = csrf_now(a)
        assert token_a != csrf_now(b)
        assert b.post("/api/tasks/1/outcome", headers={"X-CSRF-Token": token_a}, json={"outcome": "reached"}
                      ).status_code == 403
        done = a.post("/api/tasks/1/outcome", headers={"X-CSRF-Token": token_a}, json={"outcome": "reached"})
        assert done.status_code == 200 and done.json()["outcome"] == "reached"


def test_signing_in_needs_the_sign_in_pages_token_too(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        http.get("/sign-in")
        assert http.post("/sign-in", data={"user": "rm1", "password": PASSWORD}).status_code == 403
    with system(ws, clock).ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebSession)) == 0
