"""The web app's cookies and CSRF tokens: pure HMAC-SHA256 over a per-workspace secret (no I/O but the secret).

The session cookie is ``<session id>.<HMAC(secret, "session:" + id)>``: a cookie not signed by this workspace
is dropped before the database is asked. The CSRF token of a session is ``HMAC(secret, "csrf:" + id)`` — bound
to the session, never stored, and unknown to another site, which cannot read the cookie (synchroniser token,
OWASP CSRF Prevention Cheat Sheet). Before sign-in the browser holds a random ``pre`` cookie and the sign-in
form carries ``HMAC(secret, "pre:" + pre)`` the same way (login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SESSION_COOKIE = "lifeloop_session"
PRE_COOKIE = "lifeloop_pre"
LANGUAGE_COOKIE = "lifeloop_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _mac(secret: bytes, purpose: str, value: str) -> str:
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def sign(secret: bytes, session_id: str) -> str:
    """The session cookie's value for a session id."""
    return f"{session_id}.{_mac(secret, 'session', session_id)}"


def unsign(secret: bytes, cookie: str | None) -> str | None:
    """The session id of a cookie this workspace signed, else None."""
    session_id, _, mac = (cookie or "").rpartition(".")
    if not session_id or len(cookie or "") > 200:
        return None
    return session_id if hmac.compare_digest(mac, _mac(secret, "session", session_id)) else None


def csrf_token(secret: bytes, session_id: str | None, pre: str | None) -> str:
    """The CSRF token forms and htmx send: bound to the session, or before sign-in to the ``pre`` cookie."""
    if session_id:
        return _mac(secret, "csrf", session_id)
    return _mac(secret, "pre", pre or "")


def csrf_ok(secret: bytes, session_id: str | None, pre: str | None, sent: str | None) -> bool:
    """Whether the token sent with a state-changing request is the one of this browser's session (or pre-cookie)."""
    if not sent or not (session_id or pre):
        return False
    return hmac.compare_digest(sent, csrf_token(secret, session_id, pre))


def new_pre() -> str:
    """A fresh pre-sign-in cookie value (128 random bits)."""
    return secrets.token_urlsafe(16)


def workspace_secret(path: Path) -> bytes:
    """The workspace's cookie-signing secret (256 random bits), made on first use, readable by its owner only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass   # another process made it first: read theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())
