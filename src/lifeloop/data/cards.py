"""Payment-card numbers (PAN, 卡号): the one Luhn check of Lifeloop (ISO/IEC 7812-1, Annex B).

The simulator uses it to make well-formed test cards; ingestion uses it to recognise a card number
sitting in a free-text column (docs/security.md).
"""

from __future__ import annotations

import re

import numpy as np

# values: magnetic-stripe tracks (ISO/IEC 7813), with or without their sentinels
TRACK_1 = r"B[0-9]{12,19}\^[^^]{2,26}\^[0-9]{4}"
TRACK_2 = r"[0-9]{12,19}=[0-9]{4}"
# a cheap pre-filter in DuckDB; the precise test (groups, issuer digit, Luhn) is in Python
PAN_PREFILTER = r"[0-9]{13}|[0-9]{4}[ -][0-9]{4}"
_PAN = re.compile(r"(?<![0-9])(?:[0-9]{13,19}"
                  r"|[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,3})?"
                  r"|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5})(?![0-9])")
ISSUER_DIGITS = "23456"
WITHHELD = "<card data withheld>"
_TRACKS = re.compile(f"%?{TRACK_1}[^?\\s']{{0,80}}\\??|;?{TRACK_2}[^?\\s']{{0,80}}\\??")


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


def holds_card_number(text: str) -> bool:
    """Whether a text holds a card number: 13-19 digits (contiguous or grouped), issuer digit 2-6, Luhn-valid."""
    candidates = [re.sub(r"[ -]", "", m) for m in _PAN.findall(text)]
    candidates = [c for c in candidates if 13 <= len(c) <= 19 and c[0] in ISSUER_DIGITS]
    return bool(candidates) and any(luhn_valid(candidates))


def redact_cards(text: str) -> str:
    """``text`` with every card number and magnetic-stripe track in it replaced by ``<card data withheld>``.

    Messages quote the values they refuse; a card number must never be quoted (PCI DSS 3.3).
    """
    if not any(ch.isdigit() for ch in text):
        return text
    text = _TRACKS.sub(WITHHELD, text)
    return _PAN.sub(lambda m: WITHHELD if holds_card_number(m.group(0)) else m.group(0), text)
