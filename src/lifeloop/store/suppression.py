"""The suppression key and keyed hashes (HMAC-SHA256) of a purged person's identifiers.

A purged customer leaves no personal data behind, only keyed hashes of their customer id, ID number and
mobile (``suppressions`` in the ops database), so that a later batch that brings them back is recognised
and kept out of marketing. The key lives in ``<workspace>/keys/suppression.key`` (0600), created on
first use; without it the hashes cannot be matched, nor recomputed from a guessed number.

Interim: the key manager (encryption at rest) will hold this key; :func:`suppression_key` is the one
place that reads it, so routing it there changes nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from lifeloop.errors import ConfigError

KEY_FILE = Path("keys") / "suppression.key"
KEY_BYTES = 32
SUPPRESSION_KINDS = ("customer_id", "id_number", "mobile")   # what a purge leaves hashed


def suppression_key(workspace: str | Path) -> bytes:
    """The workspace's suppression key (32 random bytes), created with permissions 0600 on first use."""
    path = Path(workspace) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass   # another process created it meanwhile: use theirs
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(KEY_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{path}: the suppression key is {len(key)} bytes, not {KEY_BYTES}",
                          hint="restore the key file from the bank's key backup; without it earlier suppression "
                               "records can no longer be matched (do not create a new one unless it is lost)")
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path}: the suppression key is readable by others (mode {path.stat().st_mode & 0o777:o})",
                          hint=f"chmod 600 {path}")
    return key


def normalise(kind: str, value: object) -> str | None:
    """The form a value is hashed in: trimmed; ID numbers upper-case; mobiles as digits (no +86 prefix)."""
    if value is None:
        return None
    text = str(value).strip()
    if kind == "id_number":
        text = text.upper().replace(" ", "")
    elif kind == "mobile":
        text = re.sub(r"\D", "", text)
        if len(text) == 13 and text.startswith("86"):
            text = text[2:]
    return text or None


def digest(key: bytes, kind: str, value: object) -> str | None:
    """HMAC-SHA256 (hex) of ``kind:value`` under the key, or None for an empty value."""
    text = normalise(kind, value)
    if text is None:
        return None
    return hmac.new(key, f"{kind}:{text}".encode(), hashlib.sha256).hexdigest()
