"""The web app's sign-in (lifeloop.web): passwords, lock-out after repeated failures, server-side sessions.

A password is kept as an argon2id hash (argon2-cffi's defaults: RFC 9106's second recommended option) and
never leaves this module; an unknown user costs the same hash, so timing does not tell who exists. After
``max_failures`` failures in a row a user is locked for ``lock_minutes`` (even the right password is refused
then); every sign-in, failure and lock-out is on the audit log. A session id is 256 random bits that only the
user's cookie holds: the table keeps its SHA-256, when it was last used (the idle timeout is checked on every
request) and when it was revoked (sign-out, idle, the user disabled). Services take a session and never
commit (the caller's unit of work does).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.data.access import Principal
from lifeloop.data.masking import AccessError
from lifeloop.store.ops import audit
from lifeloop.store.ops.models import User, WebSession
from lifeloop.store.ops.principals import USER_ID, get_user, principal_of
from lifeloop.store.ops.types import as_utc, utcnow

MIN_PASSWORD = 12     # characters; NIST SP 800-63B asks for at least 8, banks' policies usually 12
MAX_PASSWORD = 1024   # characters: hashing a megabyte-long "password" is a denial of service


@dataclasses.dataclass(frozen=True)
class Lockout:
    """How many failures in a row lock a user, and for how long (lifeloop.yaml ``web:``)."""

    max_failures: int = 5
    lock_minutes: int = 30


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


_DUMMY: list[str] = []   # one argon2 hash of nothing, made on first use, verified against for unknown users


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_hasher().hash(secrets.token_hex(16)))
    return _DUMMY[0]


def check_password(password: str) -> str:
    """The password, or a clear refusal when it is too short or too long (before anything is written)."""
    if not MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD:
        raise AccessError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters (this one has "
                          f"{len(password or '')})", hint="choose a longer pass phrase, e.g. four unrelated words")
    return password


def set_password(session: Session, *, user_id: str, password: str, actor: str,
                 now: dt.datetime | None = None) -> User:
    """Give a user a (new) web password: stored as an argon2id hash; unlocks them; audited (never the password)."""
    now = as_utc(now or utcnow())
    check_password(password)
    user = get_user(session, user_id)
    user.password_hash = _hasher().hash(password)
    user.failed_sign_ins = 0
    user.locked_until = None
    user.updated_at = now
    revoke_all(session, user_id=user_id, why="password", now=now)
    audit.record(session, actor=actor, action="user.set_password", target_type="user", target_id=user_id, at=now)
    return user


def _verify(stored: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def password_sign_in(session: Session, *, user_id: str, password: str, lockout: Lockout, client: str | None = None,
                     now: dt.datetime | None = None) -> Principal | None:
    """The principal for a user name and password, or None (one refusal whatever went wrong); audited either way.

    Failures count per user; the ``lockout.max_failures``-th locks the user for ``lockout.lock_minutes``
    (audited as ``user.locked``); a success resets the count.
    """
    now = as_utc(now or utcnow())
    claimed = (user_id or "?")[:64]
    user = session.get(User, user_id) if USER_ID.fullmatch(user_id or "") else None
    good = _verify(user.password_hash if user is not None else None, (password or "")[:MAX_PASSWORD])
    locked = user is not None and user.locked_until is not None and as_utc(user.locked_until) > now
    why = ("unknown user" if user is None else "disabled" if not user.active else "locked" if locked
           else "no password set" if user.password_hash is None else None if good else "bad password")
    if why is None and user is not None:
        user.failed_sign_ins = 0
        user.locked_until = None
        audit.record(session, actor=user.id, action="user.sign_in", target_type="user", target_id=user.id, at=now,
                     client=client, details={"method": "password"})
        return principal_of(user, "password")
    audit.record(session, actor=claimed, action="user.sign_in", target_type="user", target_id=claimed, at=now,
                 client=client, result="refused", details={"method": "password", "why": why})
    if user is not None and why in ("bad password", "no password set"):
        user.failed_sign_ins = (user.failed_sign_ins or 0) + 1
        if user.failed_sign_ins >= lockout.max_failures:
            user.locked_until = now + dt.timedelta(minutes=lockout.lock_minutes)
            user.failed_sign_ins = 0
            revoke_all(session, user_id=user.id, why="locked", now=now)
            audit.record(session, actor=user.id, action="user.locked", target_type="user", target_id=user.id, at=now,
                         client=client, result="refused",
                         details={"failures": lockout.max_failures, "until": user.locked_until.isoformat()})
    session.flush()
    return None


def oidc_sign_in(session: Session, *, user_id: str, issuer: str, client: str | None = None,
                 now: dt.datetime | None = None) -> Principal | None:
    """The principal for a user the bank's identity provider vouched for (its ID token already checked), or None
    when Lifeloop does not know them, or they are disabled or locked; audited either way (``method: oidc``).

    The provider grants nothing: the user must be in Lifeloop's users table and gets Lifeloop's roles.
    """
    now = as_utc(now or utcnow())
    claimed = (user_id or "?")[:64]
    user = session.get(User, user_id) if USER_ID.fullmatch(user_id or "") else None
    locked = user is not None and user.locked_until is not None and as_utc(user.locked_until) > now
    why = "unknown user" if user is None else "disabled" if not user.active else "locked" if locked else None
    details = {"method": "oidc", "issuer": issuer[:256]}
    if why is None and user is not None:
        audit.record(session, actor=user.id, action="user.sign_in", target_type="user", target_id=user.id, at=now,
                     client=client, details=details)
        return principal_of(user, "oidc")
    audit.record(session, actor=claimed, action="user.sign_in", target_type="user", target_id=claimed, at=now,
                 client=client, result="refused", details={**details, "why": why})
    session.flush()
    return None


def oidc_refused(session: Session, *, why: str, issuer: str, client: str | None = None,
                 now: dt.datetime | None = None) -> None:
    """Audit a single sign-on that failed before a user was known (bad state, token, signature, audience...)."""
    audit.record(session, actor="?", action="user.sign_in", target_type="user", target_id="?",
                 at=as_utc(now or utcnow()), client=client, result="refused",
                 details={"method": "oidc", "issuer": issuer[:256], "why": why[:200]})
    session.flush()


# ---------------------------------------------------------------------------------------------- sessions
def session_hash(session_id: str) -> str:
    """What the table keeps of a session id: its SHA-256 (hex)."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def open_session(session: Session, *, user_id: str, now: dt.datetime | None = None) -> str:
    """A new session for a signed-in user; returns the session id (256 random bits), which only the cookie keeps."""
    now = as_utc(now or utcnow())
    session_id = secrets.token_urlsafe(32)
    session.add(WebSession(id_hash=session_hash(session_id), user_id=user_id, created_at=now, last_seen_at=now))
    session.flush()
    return session_id


def resume(session: Session, *, session_id: str, idle: dt.timedelta,
           now: dt.datetime | None = None) -> Principal | None:
    """The principal of a live session (and mark it used now), or None: unknown, revoked, idle too long, or its
    user disabled or locked since — an idle session is revoked on the way."""
    now = as_utc(now or utcnow())
    row = session.get(WebSession, session_hash(session_id))
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    why = ("idle" if as_utc(row.last_seen_at) + idle <= now else "disabled" if user is None or not user.active
           else "locked" if user.locked_until is not None and as_utc(user.locked_until) > now else None)
    if why is not None:
        row.revoked_at, row.revoked_why = now, why
        session.flush()
        return None
    row.last_seen_at = now
    session.flush()
    return principal_of(user, "password")


def close_session(session: Session, *, session_id: str, actor: str, now: dt.datetime | None = None) -> bool:
    """Sign out: revoke the session (audited); False when it was not live."""
    now = as_utc(now or utcnow())
    row = session.get(WebSession, session_hash(session_id))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at, row.revoked_why = now, "sign_out"
    audit.record(session, actor=actor, action="user.sign_out", target_type="user", target_id=row.user_id, at=now)
    session.flush()
    return True


def revoke_all(session: Session, *, user_id: str, why: str, now: dt.datetime | None = None) -> int:
    """Revoke every live session of a user (a new password, a lock-out, an administrator's request)."""
    now = as_utc(now or utcnow())
    done = session.execute(sa.update(WebSession).where(WebSession.user_id == user_id,
                                                       WebSession.revoked_at.is_(None))
                           .values(revoked_at=now, revoked_why=why).execution_options(synchronize_session="fetch"))
    return done.rowcount or 0
