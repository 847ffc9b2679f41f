"""The web sign-in on SQLite and PostgreSQL: argon2id passwords, sessions kept only as a hash, a signed HttpOnly
SameSite cookie (Secure off loopback), the idle timeout, lock-out after repeated failures, sign-out revoking
the session — each audited."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from lifeloop.store.ops.models import AuditEntry, User, WebSession
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import PASSWORD, bank, client_for, csrf_now, sign_in, system  # noqa: F401 - fixture


def rows(ws, clock, model, *where):
    with system(ws, clock).ops()() as s:
        return list(s.scalars(sa.select(model).where(*where)))


def audit_actions(ws, clock, target):
    return [(e.action, e.result, (e.details or {}).get("why"))
            for e in rows(ws, clock, AuditEntry, AuditEntry.target_id == target)
            if e.action.startswith("user.sign") or e.action == "user.locked"]


def test_a_password_signs_in_and_only_hashes_of_the_password_and_the_session_id_are_stored(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        done = sign_in(http, "rm1")
        assert done.status_code == 303 and done.headers["location"] == "/worklist"
        cookie = http.cookies["lifeloop_session"]
        assert http.get("/worklist").status_code == 200
    session_id = cookie.rsplit(".", 1)[0]
    [row] = rows(ws, clock, WebSession, WebSession.user_id == "rm1")
    assert row.id_hash == hashlib.sha256(session_id.encode()).hexdigest() and row.revoked_at is None
    [user] = rows(ws, clock, User, User.id == "rm1")
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert ("user.sign_in", "ok", None) in audit_actions(ws, clock, "rm1")


def test_the_session_cookie_is_signed_httponly_and_samesite_lax_and_secure_off_loopback(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        flags = sign_in(http, "rm1").headers["set-cookie"].lower()
        assert "httponly" in flags and "samesite=lax" in flags and "secure" not in flags
        # a cookie this workspace did not sign is no session, even with a real session id in it
        session_id = http.cookies["lifeloop_session"].rsplit(".", 1)[0]
        http.cookies.set("lifeloop_session", session_id + "." + "0" * 64, domain="127.0.0.1")
        assert http.get("/worklist").headers["location"] == "/sign-in"
    with client_for(ws, clock) as http:
        http.base_url = "http://bank.example"
        page = http.get("/sign-in")
        assert "secure" in page.headers["set-cookie"].lower()


def test_a_wrong_password_an_unknown_user_and_a_disabled_one_get_the_same_refusal_all_audited(bank):
    ws, clock = bank
    system(ws, clock).disable_user("rm2")
    with client_for(ws, clock) as http:
        answers = [sign_in(http, "rm1", "not the password at all"), sign_in(http, "nobody"), sign_in(http, "rm2")]
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1                                # the same bytes, whatever went wrong
    assert ("user.sign_in", "refused", "bad password") in audit_actions(ws, clock, "rm1")
    assert ("user.sign_in", "refused", "unknown user") in audit_actions(ws, clock, "nobody")
    assert ("user.sign_in", "refused", "disabled") in audit_actions(ws, clock, "rm2")


def test_five_wrong_passwords_lock_the_user_out_even_the_right_one_until_the_lock_ends(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        assert http.get("/worklist").status_code == 200
    with client_for(ws, clock) as other:
        for _ in range(5):
            assert sign_in(other, "rm1", "guessing the password").status_code == 401
        assert sign_in(other, "rm1").status_code == 401                       # locked: the right one too
        [user] = rows(ws, clock, User, User.id == "rm1")
        assert user.locked_until is not None
        assert ("user.locked", "refused", None) in audit_actions(ws, clock, "rm1")
        assert ("user.sign_in", "refused", "locked") in audit_actions(ws, clock, "rm1")
        clock.advance(minutes=31)                                             # web.lock_minutes: 30
        assert sign_in(other, "rm1").status_code == 303
    # the lock-out also ended the sessions the user had open
    assert {r.revoked_why for r in rows(ws, clock, WebSession, WebSession.user_id == "rm1")} == {"locked", None}


def test_an_idle_session_ends_and_signing_out_revokes_the_session_for_good(bank):
    ws, clock = bank
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        clock.advance(minutes=29)
        assert http.get("/worklist").status_code == 200                       # used: the idle time restarts
        clock.advance(minutes=29)
        assert http.get("/api/worklist").status_code == 200
        clock.advance(minutes=31)                                             # web.idle_minutes: 30
        assert http.get("/worklist").headers["location"] == "/sign-in"
        assert http.get("/api/worklist").status_code == 401
        sign_in(http, "rm1")
        kept = http.cookies["lifeloop_session"]
        out = http.post("/sign-out", data={"csrf": csrf_now(http)})
        assert out.status_code == 303 and out.headers["location"] == "/sign-in"
        http.cookies.set("lifeloop_session", kept, domain="127.0.0.1")       # replaying the old cookie
        assert http.get("/api/worklist").status_code == 401
    assert sorted(r.revoked_why for r in rows(ws, clock, WebSession, WebSession.user_id == "rm1")) == ["idle",
                                                                                                        "sign_out"]
    assert ("user.sign_out", "ok", None) in audit_actions(ws, clock, "rm1")


def test_setting_a_password_is_for_administrators_or_the_user_and_a_short_one_is_refused(bank):
    import pytest

    from lifeloop.context import Context
    from lifeloop.data.access import Grant, Principal
    from lifeloop.data.masking import AccessError

    ws, clock = bank
    with pytest.raises(AccessError, match="12 to 1024 characters"):
        system(ws, clock).set_password("rm1", "short")
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
    as_rm1 = Context(ws, principal=Principal("rm1", "rm1", (Grant("rm", "RM001"),), "password"), clock=clock)
    with pytest.raises(AccessError):
        as_rm1.set_password("rm2", "another long pass phrase")
    as_rm1.set_password("rm1", "my own new pass phrase")
    # a new password ends the user's web sessions
    assert {r.revoked_why for r in rows(ws, clock, WebSession, WebSession.user_id == "rm1")} == {"password"}
