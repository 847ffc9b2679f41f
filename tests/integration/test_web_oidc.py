"""Single sign-on against a stub OpenID Connect provider on 127.0.0.1 (tests/oidc_stub.py), SQLite and PostgreSQL:
the authorization-code flow with PKCE signs a known user in (same session table, cookie, CSRF and audit as a
password); a wrong state, a replayed code, a bad signature, an expired token, another audience and a user
Lifeloop does not know are refused with one message, no session row, and an audit entry saying why."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from lifeloop.store.ops.models import AuditEntry, WebSession
from tests.oidc_stub import CLIENT_SECRET, SECRET_ENV, StubProvider, configure
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import bank, client_for, csrf_now, system  # noqa: F401 - fixture


@pytest.fixture
def sso(bank, monkeypatch):
    """(workspace, clock, stub): the bank with web.oidc pointing at a running stub provider."""
    ws, clock = bank
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    with StubProvider(clock) as stub:
        configure(ws, stub)
        yield ws, clock, stub


def to_provider(http, stub):
    """Start the sign-on; returns the provider's redirect back to the app (the callback URL)."""
    start = http.get("/sign-in/oidc")
    assert start.status_code == 303 and start.headers["location"].startswith(stub.origin + "/authorize?")
    back = httpx.get(start.headers["location"], follow_redirects=False)
    assert back.status_code == 302 and back.headers["location"].startswith("http://127.0.0.1/sign-in/oidc/callback?")
    return back.headers["location"]


def sessions(ws, clock):
    with system(ws, clock).ops()() as s:
        return list(s.scalars(sa.select(WebSession)))


def refusals(ws, clock):
    with system(ws, clock).ops()() as s:
        return [(e.target_id, e.details.get("why")) for e in s.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "user.sign_in", AuditEntry.result == "refused")) if e.details.get("method") == "oidc"]


def test_the_sign_in_page_offers_the_provider_and_a_known_user_signs_in_with_a_session_like_a_password(sso):
    ws, clock, stub = sso
    with client_for(ws, clock) as http:
        assert "Bank SSO" in http.get("/sign-in").text
        done = http.get(to_provider(http, stub))
        assert done.status_code == 303 and done.headers["location"] == "/board"
        assert http.get("/api/board").status_code == 200
        assert "httponly" in done.headers["set-cookie"].lower()
        token = csrf_now(http, "/board")                                   # the same CSRF as a password session
        assert http.post("/sign-out", data={"csrf": token}).status_code == 303
    [row] = sessions(ws, clock)
    assert row.user_id == "analyst" and row.revoked_why == "sign_out"
    with system(ws, clock).ops()() as s:
        [entry] = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.sign_in",
                                                        AuditEntry.result == "ok"))
    assert entry.actor == "analyst" and entry.details == {"method": "oidc", "issuer": stub.origin}


def test_a_wrong_state_is_refused(sso):
    ws, clock, stub = sso
    with client_for(ws, clock) as http:
        callback = to_provider(http, stub)
        forged = callback.replace("state=", "state=x")
        answer = http.get(forged)
        assert answer.status_code == 401 and "sign-on-failed" in answer.text
        assert stub.token_calls == 0                                        # refused before the code was used
    assert sessions(ws, clock) == []
    assert refusals(ws, clock) == [("?", "the state does not match this browser's sign-on")]


def test_a_callback_without_the_browsers_pending_cookie_is_refused(sso):
    ws, clock, stub = sso
    with client_for(ws, clock) as http:
        callback = to_provider(http, stub)
    with client_for(ws, clock) as other:                                  # another browser: no pending cookie
        assert other.get(callback).status_code == 401
    assert sessions(ws, clock) == []


@pytest.mark.parametrize("stub_takes_it_again", [False, True])
def test_a_replayed_code_is_refused(sso, stub_takes_it_again):
    ws, clock, stub = sso
    stub.codes_once = not stub_takes_it_again     # Lifeloop refuses a replayed callback whatever the provider does
    with client_for(ws, clock) as http:
        callback = to_provider(http, stub)
        pending = http.cookies.get("lifeloop_oidc")
        assert http.get(callback).status_code == 303
        http.cookies.set("lifeloop_oidc", pending, domain="127.0.0.1", path="/sign-in/oidc")
        assert http.get(callback).status_code == 401
    assert len(sessions(ws, clock)) == 1
    assert refusals(ws, clock) == [("?", "this sign-on was already used (a replayed callback)")]


@pytest.mark.parametrize("spoil, why", [
    (lambda stub: stub.bad_key(), "BadSignatureError"),
    (lambda stub: setattr(stub, "lifetime", -120), "ExpiredTokenError"),
    (lambda stub: setattr(stub, "audience", "someone-else"), "InvalidClaimError"),
])
def test_a_bad_signature_an_expired_token_and_another_audience_are_refused(sso, spoil, why):
    ws, clock, stub = sso
    spoil(stub)
    with client_for(ws, clock) as http:
        answer = http.get(to_provider(http, stub))
        assert answer.status_code == 401 and "sign-on-failed" in answer.text
        assert http.get("/api/board").status_code == 401
    assert sessions(ws, clock) == []
    [(target, reason)] = refusals(ws, clock)
    assert target == "?" and why in reason


def test_a_user_lifeloop_does_not_know_is_refused_no_session_and_audited(sso):
    ws, clock, stub = sso
    stub.user = "mallory"
    with client_for(ws, clock) as http:
        answer = http.get(to_provider(http, stub))
        assert answer.status_code == 401 and "sign-on-failed" in answer.text
    assert sessions(ws, clock) == []
    assert refusals(ws, clock) == [("mallory", "unknown user")]


def test_without_the_client_secret_in_the_environment_nobody_is_sent_to_the_provider(sso, monkeypatch):
    ws, clock, stub = sso
    monkeypatch.delenv(SECRET_ENV)
    with client_for(ws, clock) as http:
        assert http.get("/sign-in/oidc").status_code == 401
    assert stub.codes == {}


def test_the_configuration_refuses_a_plain_http_issuer_off_loopback_and_a_secret_in_the_file():
    from pydantic import ValidationError

    from lifeloop.config.workspace import WebSettings

    with pytest.raises(ValidationError, match="https"):
        WebSettings.model_validate({"oidc": {"name": "SSO", "issuer": "http://sso.bank.example", "client_id": "x"}})
    with pytest.raises(ValidationError, match="client_secret"):
        WebSettings.model_validate({"oidc": {"name": "SSO", "issuer": "https://sso.bank.example", "client_id": "x",
                                             "client_secret": "s3cret"}})
