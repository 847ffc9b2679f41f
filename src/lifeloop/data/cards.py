"""Payment-card numbers (PAN, 卡号): the one Luhn check of Lifeloop (ISO/IEC 7812-1, Annex B).

The simulator uses it to make well-formed test cards; ingestion uses it to recognise a card number
sitting in a free-text column (docs/security.md).
"""

from __future__ import annotations

import numpy as np


def luhn_check_digit(body: np.ndarray) -> np.ndarray:
    """Luhn check digits for an (n, k) matrix of digits (the payload without the check digit)."""
    d = body[:, ::-1].astype(np.int16)
    dbl = d[:, 0::2] * 2
    d[:, 0::2] = np.where(dbl > 9, dbl - 9, dbl)
    return ((10 - d.sum(1) % 10) % 10).astype(np.int8)


def luhn_valid(digits: list[str]) -> list[bool]:
    """For each string of digits (all of one length or not), whether its last digit is its Luhn check digit."""
    out = [False] * len(digits)
    by_length: dict[int, list[int]] = {}
    for i, d in enumerate(digits):
        by_length.setdefault(len(d), []).append(i)
    for length, idx in by_length.items():
        if length < 2:
            continue
        mat = np.frombuffer("".join(digits[i] for i in idx).encode("ascii"), np.uint8).reshape(len(idx), length) - 48
        ok = luhn_check_digit(mat[:, :-1]) == mat[:, -1]
        for i, v in zip(idx, ok.tolist(), strict=True):
            out[i] = bool(v)
    return out
