"""Users, role grants, sign-in and unmask grants in the operations database (tables ``users``, ``role_grants``,
``unmask_grants``).

A user signs in with a token (``LIFELOOP_USER`` + ``LIFELOOP_TOKEN``), or as the OS user mapped to them when
the workspace allows it. Only a salted scrypt hash of the token is stored (hashlib.scrypt, n=2**14, r=8, p=1)
and it is compared in constant time; an unknown user costs the same hash, so timing does not tell who exists.
Every change to a user, every sign-in (good or bad, with host and process) and every unmask grant is on the
audit log. Services take a session and never commit (the caller's unit of work does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.data.access import Grant, PermissionDenied, Principal
from lifeloop.data.masking import AccessError
from lifeloop.errors import NotFoundError, Problem, did_you_mean
from lifeloop.store.ops import audit
from lifeloop.store.ops.models import RoleGrant, UnmaskGrant, User
from lifeloop.store.ops.types import as_utc, utcnow

USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}")
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
_DUMMY = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 32   # hashed against when the user is unknown


# ---------------------------------------------------------------------------------------------- secrets
def new_token() -> str:
    """A fresh sign-in token (256 random bits, URL-safe text); shown once, never stored."""
    return secrets.token_urlsafe(32)


def hash_secret(token: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex) of a token, with a fresh 16-byte salt."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode("utf-8"), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_secret(token: str, stored: str) -> bool:
    """Whether ``token`` hashes to ``stored`` (constant-time compare; a malformed hash never matches)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(token.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(digest) // 2, maxmem=64 * 1024 * 1024)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


# ---------------------------------------------------------------------------------------------- users
def check_user_id(user_id: str) -> str:
    """A user id as audit entries will carry it, or a clear refusal."""
    if not USER_ID.fullmatch(user_id or ""):
        raise AccessError(f"user name {user_id!r} is not allowed",
                          problems=[Problem("1 to 64 letters, digits, '.', '_', '-' or '@', starting with a letter "
                                            "or digit", field="name")],
                          hint="e.g. lifeloop users add zhang.wei --role analyst")
    return user_id


def count_users(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(User)) or 0


def get_user(session: Session, user_id: str) -> User:
    """The user called ``user_id``, or a NotFoundError with a "did you mean" (for administrators only)."""
    user = session.get(User, user_id)
    if user is None:
        names = session.scalars(sa.select(User.id)).all()
        raise NotFoundError(f"no user {user_id!r}{did_you_mean(user_id, names)}",
                            hint="`lifeloop users list` shows every user")
    return user


def principal_of(user: User, method: str) -> Principal:
    """The principal a user signs in as: their id, name and role grants."""
    return Principal(user.id, user.display_name, tuple(sorted(Grant(g.role, g.scope) for g in user.grants)), method)


def _active_admins(session: Session) -> set[str]:
    return set(session.scalars(sa.select(User.id).join(RoleGrant).where(User.active.is_(True),
                                                                          RoleGrant.role == "admin")))


def add_user(session: Session, *, user_id: str, display_name: str | None, grants: Iterable[Grant],
             os_user: str | None, actor: str, now: dt.datetime | None = None,
             details: dict[str, Any] | None = None) -> tuple[User, str]:
    """Create a user with their roles; returns the user and their one-time token (only its hash is kept)."""
    now = as_utc(now or utcnow())
    check_user_id(user_id)
    grants = sorted(set(grants))
    if not grants:
        raise AccessError(f"user {user_id} needs at least one role",
                          hint="add --role ROLE (admin, analyst, compliance, branch_manager=B01, rm=RM001, approver)")
    if session.get(User, user_id) is not None:
        raise AccessError(f"user {user_id!r} already exists", hint="grant roles with `lifeloop users grant`")
    if os_user is not None:
        taken = session.scalar(sa.select(User.id).where(User.os_user == os_user))
        if taken is not None:
            raise AccessError(f"OS user {os_user!r} is already mapped to user {taken}",
                              hint="one OS user signs in as one Lifeloop user; map another OS user or none")
    token = new_token()
    user = User(id=user_id, display_name=(display_name or user_id).strip()[:200] or user_id, active=True,
                secret_hash=hash_secret(token), os_user=os_user, created_at=now, updated_at=now, created_by=actor)
    session.add(user)
    session.flush()
    for g in grants:
        session.add(RoleGrant(user_id=user_id, role=g.role, scope=g.scope, granted_at=now, granted_by=actor))
    session.flush()
    session.refresh(user)
    audit.record(session, actor=actor, action="user.add", target_type="user", target_id=user_id, at=now,
                 details={"roles": [str(g) for g in grants], "os_user": os_user, **(details or {})})
    return user, token


def grant_role(session: Session, *, user_id: str, grant: Grant, actor: str, now: dt.datetime | None = None) -> User:
    """Give a user one more role (audited); holding it already is an error."""
    now = as_utc(now or utcnow())
    user = get_user(session, user_id)
    if any(g.role == grant.role and g.scope == grant.scope for g in user.grants):
        raise AccessError(f"user {user_id} already holds {grant}", hint="`lifeloop users list` shows their roles")
    session.add(RoleGrant(user_id=user_id, role=grant.role, scope=grant.scope, granted_at=now, granted_by=actor))
    user.updated_at = now
    session.flush()
    session.refresh(user)
    audit.record(session, actor=actor, action="user.grant", target_type="user", target_id=user_id, at=now,
                 details={"role": str(grant)})
    return user


def revoke_role(session: Session, *, user_id: str, grant: Grant, actor: str, now: dt.datetime | None = None) -> User:
    """Take a role away (audited); the last active administrator's admin role is never taken."""
    now = as_utc(now or utcnow())
    user = get_user(session, user_id)
    row = next((g for g in user.grants if g.role == grant.role and g.scope == grant.scope), None)
    if row is None:
        raise AccessError(f"user {user_id} does not hold {grant}",
                          hint=f"they hold: {', '.join(str(Grant(g.role, g.scope)) for g in user.grants) or 'none'}")
    if grant.role == "admin" and _active_admins(session) == {user_id}:
        raise PermissionDenied(f"user {user_id} is the last active administrator; the role stays",
                               hint="make someone else an administrator first")
    session.delete(row)
    user.updated_at = now
    session.flush()
    session.refresh(user)
    audit.record(session, actor=actor, action="user.revoke", target_type="user", target_id=user_id, at=now,
                 details={"role": str(grant)})
    return user


def disable_user(session: Session, *, user_id: str, actor: str, now: dt.datetime | None = None) -> User:
    """Stop a user from signing in (kept, so audit entries still name them); audited."""
    now = as_utc(now or utcnow())
    user = get_user(session, user_id)
    if not user.active:
        raise AccessError(f"user {user_id} is already disabled", hint="nothing to do")
    if _active_admins(session) == {user_id}:
        raise PermissionDenied(f"user {user_id} is the last active administrator and cannot be disabled",
                               hint="make someone else an administrator first")
    user.active = False
    user.updated_at = now
    session.flush()
    audit.record(session, actor=actor, action="user.disable", target_type="user", target_id=user_id, at=now)
    return user


def reset_token(session: Session, *, user_id: str, actor: str, now: dt.datetime | None = None) -> str:
    """Issue a new token for a user (the old one stops working); audited. Returns the token, shown once."""
    now = as_utc(now or utcnow())
    user = get_user(session, user_id)
    token = new_token()
    user.secret_hash = hash_secret(token)
    user.updated_at = now
    session.flush()
    audit.record(session, actor=actor, action="user.reset_token", target_type="user", target_id=user_id, at=now)
    return token


def list_users(session: Session) -> list[dict[str, Any]]:
    """Every user with their roles (never their hash)."""
    users = session.scalars(sa.select(User).order_by(User.id)).all()
    return [{"user": u.id, "name": u.display_name, "active": u.active, "os_user": u.os_user,
             "roles": [str(Grant(g.role, g.scope)) for g in sorted(u.grants, key=lambda g: (g.role, g.scope))],
             "created_at": u.created_at, "created_by": u.created_by, "updated_at": u.updated_at} for u in users]


# ---------------------------------------------------------------------------------------------- sign-in
def sign_in(session: Session, *, user_id: str | None, token: str | None, os_user: str | None,
            allow_os_users: bool, now: dt.datetime | None = None) -> Principal | None:
    """Authenticate by token (``user_id`` + ``token``), else as a mapped OS user; audit the attempt either way.

    Returns None on any failure (the caller refuses with one message whatever went wrong); the audit entry
    says what it was (unknown user, disabled, bad token, OS user not mapped), for administrators.
    """
    now = as_utc(now or utcnow())
    if user_id:
        method, claimed = "token", user_id[:64]
        user = session.get(User, user_id) if USER_ID.fullmatch(user_id) else None
        good = verify_secret(token or "", user.secret_hash if user is not None else _DUMMY)
        why = ("unknown user" if user is None else "disabled" if not user.active
               else None if good else "bad token")
    elif os_user and allow_os_users:
        method, claimed = "os_user", f"os:{os_user}"[:64]
        user = session.scalar(sa.select(User).where(User.os_user == os_user))
        why = "OS user not mapped" if user is None else "disabled" if not user.active else None
    else:
        method, claimed, user = "none", f"os:{os_user or '?'}"[:64], None
        why = "no credentials (LIFELOOP_USER and LIFELOOP_TOKEN not set" + \
              (")" if allow_os_users else "; OS-user sign-in is off)")
    if why is not None or user is None:
        audit.record(session, actor=claimed, action="user.sign_in", target_type="user", target_id=claimed, at=now,
                     result="refused", details={"method": method, "why": why})
        return None
    audit.record(session, actor=user.id, action="user.sign_in", target_type="user", target_id=user.id, at=now,
                 details={"method": method, **({"os_user": os_user} if method == "os_user" else {})})
    return principal_of(user, method)


# ---------------------------------------------------------------------------------------------- unmasking
def grant_unmask(session: Session, *, principal: Principal, customer_id: str, fields: list[str], reason: str,
                 minutes: int, now: dt.datetime | None = None) -> UnmaskGrant:
    """Record that ``principal`` may see ``fields`` of one customer unmasked for ``minutes``; audited."""
    now = as_utc(now or utcnow())
    until = now + dt.timedelta(minutes=minutes)
    row = UnmaskGrant(user_id=principal.user_id, customer_id=customer_id, fields=",".join(fields),
                      reason=reason, granted_at=now, expires_at=until)
    session.add(row)
    session.flush()
    audit.record(session, actor=principal.user_id, action="customer.unmask", target_type="customer",
                 target_id=customer_id, reason=reason, at=now,
                 details={"fields": fields, "until": until.isoformat(timespec="seconds"), "grant_id": row.id})
    return row


def unmasked_fields(session: Session, *, user_id: str, customer_id: str, now: dt.datetime | None = None) -> list[str]:
    """The fields of a customer the user may see unmasked right now (grants not yet expired)."""
    now = as_utc(now or utcnow())
    rows = session.scalars(sa.select(UnmaskGrant.fields).where(
        UnmaskGrant.user_id == user_id, UnmaskGrant.customer_id == customer_id,
        UnmaskGrant.granted_at <= now, UnmaskGrant.expires_at > now)).all()
    return sorted({f for r in rows for f in r.split(",") if f})
