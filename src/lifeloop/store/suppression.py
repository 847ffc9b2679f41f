"""The suppression key and keyed hashes (HMAC-SHA256) of a purged person's identifiers.

A purged customer leaves no personal data behind, only keyed hashes of their customer id, ID number and
mobile (``suppressions`` in the ops database), so that a later batch that brings them back is recognised
and kept out of marketing. The key is the key manager's (``lifeloop.store.keys``: a key derived for the
purpose ``suppression`` from the workspace's hash key, wrapped by the bank's master key, stable across
rotations); without it the hashes cannot be matched, nor recomputed from a guessed number.
"""

from __future__ import annotations

import re
from typing import Protocol

SUPPRESSION_KINDS = ("customer_id", "id_number", "mobile")   # what a purge leaves hashed


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


class KeyedHash(Protocol):
    """What hashes a suppression record: the workspace's keys (``lifeloop.store.keys.Keys.keyed_hash``)."""

    def keyed_hash(self, purpose: str, value: str) -> str: ...


def digest(keys: KeyedHash, kind: str, value: object) -> str | None:
    """HMAC-SHA256 (hex) of ``kind:value`` under the key manager's suppression key, or None for an empty value."""
    text = normalise(kind, value)
    if text is None:
        return None
    return keys.keyed_hash("suppression", f"{kind}:{text}")
