"""schemathesis over the app's OpenAPI description, in process (the ASGI app): signed in as an analyst and as an
RM, with the session's CSRF token, at least 1,000 generated cases in all — 0 server errors, and every response's
status code, content type, headers and body as the description says (schemathesis' checks)."""

from __future__ import annotations

import pytest

from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import bank, client_for, csrf_now, sign_in  # noqa: F401 - fixture

pytestmark = [pytest.mark.slow, pytest.mark.validate]   # `make validate`: 1,000+ generated requests, 2-3 minutes
EXAMPLES = 100     # per operation and user (at most; one without parameters has one case)
MIN_CASES = 1000


def signed_in(ws, clock, user: str, home: str) -> dict[str, str]:
    """Cookie and X-CSRF-Token headers of a fresh session of ``user``."""
    with client_for(ws, clock) as http:
        assert sign_in(http, user).status_code == 303
        token = csrf_now(http, home)
        cookie = http.cookies["lifeloop_session"]
    return {"Cookie": f"lifeloop_session={cookie}", "X-CSRF-Token": token}


def checked(operation, user: str, headers: dict[str, str], cases: list, failures: list):
    """A hypothesis test of one operation as one user: call the app, run schemathesis' checks on the answer."""
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(headers=headers)
        cases.append((user, case.operation.label, response.status_code))
        try:
            case.validate_response(response, additional_checks=[not_a_server_error])
        except BaseException as exc:   # noqa: B036 - a FailureGroup; every operation's first failure is reported, then the next operation runs
            failures.append(f"{user} {case.operation.label} -> {response.status_code}: {str(exc)[:600]}")
            raise
    return run


# one database is enough for generated cases; the access tests (test_web_access.py) cover PostgreSQL. Chosen
# here rather than skipped in the test, so that no PostgreSQL bank is built only to be skipped.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_server_error_and_no_response_off_the_description(bank, database_url):
    import schemathesis

    ws, clock = bank
    cases: list[tuple[str, str, int]] = []
    failures: list[str] = []
    with client_for(ws, clock) as http:
        app = http.app
        users = {"analyst": signed_in(ws, clock, "analyst", "/board"), "rm1": signed_in(ws, clock, "rm1", "/worklist")}
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 6
        for user, headers in users.items():
            for operation in operations:
                try:
                    checked(operation, user, headers, cases, failures)()
                except BaseException as exc:   # noqa: B036 - schemathesis' FailureGroup
                    if not failures or not failures[-1].startswith(f"{user} {operation.label} "):
                        failures.append(f"{user} {operation.label}: {type(exc).__name__}: {str(exc)[:400]}")
    assert failures == [], "\n".join(failures)
    assert len(cases) >= MIN_CASES, len(cases)
    assert not [c for c in cases if c[2] >= 500]
