"""C3 never enters: authentication data is refused at ingest, whatever a mapping renames it to.

JR/T 0171-2020 class C3 (用户鉴别信息) — card PINs and passwords (银行卡密码, 交易密码, 查询密码, 登录密码),
card verification codes (CVV/CVC/CVN2, 卡片验证码), magnetic-stripe track data (磁道数据), card expiry
(卡片有效期), one-time codes (动态口令, 验证码) and biometric templates — and PCI DSS 3.2's sensitive
authentication data must never be stored. Lifeloop refuses a batch when

* a column of a source file (before the mapping renames it), a derived value or a lookup column (after)
  has a name that looks like such data, in English or Chinese (:func:`authentication_kind`);
* a staged text column holds magnetic-stripe track data (track 1 ``%B<PAN>^<NAME>^<YYMM>...?``,
  track 2 ``;<PAN>=<YYMM>...?``);
* a free-text column (a name, occupation, e-mail, event detail: :func:`free_text_columns`) holds a card
  number: 13-19 digits, contiguous or in groups of 4 (4-6-5 for Amex), starting with an issuer digit
  2-6 (ISO/IEC 7812 major industry identifiers of card schemes) and Luhn-valid. The canonical
  card/account number columns (:data:`CARD_NUMBER_COLUMNS`, C2, masked on display) are where a PAN
  belongs; identity numbers and mobiles are not free text.

Messages name the file, table, column and the first rows; values are never echoed.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from lifeloop.data.cards import PAN_PREFILTER, TRACK_1, TRACK_2, holds_card_number
from lifeloop.data.schema import TABLES
from lifeloop.data.sql import FILE, ROW, col, ident
from lifeloop.data.validate import CheckResult, RowCheck, screened
from lifeloop.errors import IngestError, Problem

SHOWN_ROWS = 5
# where the canonical model holds card or account numbers (C2): a PAN there is expected
CARD_NUMBER_COLUMNS = {("holdings", "account_id"), ("transactions", "account_id")}
# structured personal columns with their own format (GB 11643 ID numbers pass a Luhn check one time in ten)
STRUCTURED_COLUMNS = {("customers", "id_number"), ("customers", "mobile")}

HINT = ("authentication data (C3: PINs, passwords, CVV/CVN, track data, card numbers outside the card-number "
        "column) must never leave the card system: remove it from the extract and send it again; if a column is "
        "not authentication data, rename it in the extract (docs/security.md)")

# English names, matched on the name's words (card_pin, cardPIN, PIN-code; not pinyin or shipping)
_WORDS = [
    ("PIN", r"(^|_)(pin|pins|pincode|pinblock|pinno|pinnum|pinhash|pin_(code|block|no|num|hash|offset))(_|$|\d)"),
    ("card verification code", r"(^|_)(i?cvv|cvc|cvn|cav|csc|cvd)\d?(_|$)|(^|_)card_?(verification|security)_?"
                               r"(code|value|number)(_|$)"),
    ("password", r"(^|_)(password|passwd|passcode|passphrase|pwd|pword|pass_word|pass_code)(s)?(_|$|\d)"),
    ("track data", r"(^|_)(track_?[123]|track_?data|mag_?stripe|magnetic_?stripe)(_|$|\d)"),
    ("card expiry", r"(^|_)card_?(exp|expiry|expiration|expire|valid_?thru)(_|$)"),
    ("one-time code", r"(^|_)(otp|one_?time_?(password|code|pin)|sms_?code|verification_?code|auth_?code)(_|$)"),
    ("biometric data", r"(^|_)(fingerprint|biometric|biometrics|face_?template|voiceprint|iris_?template)(_|$)"),
]
# Chinese names, matched anywhere in the name
_CHINESE = [
    ("password or PIN", ("密码", "口令")),
    ("card verification code", ("校验码", "验证码", "安全码", "CVN2")),
    ("track data", ("磁道", "磁条")),
    ("card expiry", ("卡片有效期", "卡有效期")),
    ("biometric data", ("指纹", "声纹", "虹膜", "人脸特征", "生物特征")),
]
_PATTERNS = [(kind, re.compile(p)) for kind, p in _WORDS]

class AuthenticationDataError(IngestError):
    """The batch holds (or names) authentication data: refused, nothing published."""


def words(name: str) -> str:
    """A column name as lower-case words joined by ``_`` (``cardPIN-2`` -> ``card_pin_2``)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return "_".join(w for w in re.split(r"[^0-9A-Za-z]+", spaced.lower()) if w)


def authentication_kind(name: str) -> str | None:
    """What kind of authentication data a column name suggests (``PIN``, ``password``, ...), or None."""
    for kind, needles in _CHINESE:
        if any(n in name for n in needles):
            return kind
    w = words(name)
    for kind, pattern in _PATTERNS:
        if pattern.search(w):
            return kind
    return None


def refuse_named_columns(label: str, table: Any) -> None:
    """Refuse a source (an Arrow table read from ``label``) with columns named like authentication data."""
    import pyarrow.compute as pc

    problems: list[Problem] = []
    for name in table.column_names:
        kind = authentication_kind(name)
        if kind is None:
            continue
        filled = pc.indices_nonzero(pc.is_valid(table[name])).to_pylist()
        rows = ", ".join(str(i + 1) for i in filled[:SHOWN_ROWS]) + (" ..." if len(filled) > SHOWN_ROWS else "")
        where = f"{len(filled):,} row(s) hold a value" + (f" (rows {rows})" if filled else "")
        problems.append(Problem(f"the column's name looks like {kind} (C3 authentication data); {where}",
                                file=label, row=filled[0] + 1 if filled else None, column=name, rule="c3_name"))
    if problems:
        raise AuthenticationDataError(f"{label}: {len(problems)} column(s) look like authentication data "
                                      f"({', '.join(p.column or '' for p in problems)}); nothing was published",
                                      problems=problems, hint=HINT)


def named_in_mapping(names: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, str, tuple[Any, ...]]]:
    """Of (name, path in the mapping) pairs, those named like authentication data: (name, kind, path)."""
    return [(n, kind, path) for n, path in names if (kind := authentication_kind(n)) is not None]


def free_text_columns(table: str) -> list[str]:
    """Text columns of a canonical table that are free text: not ids, codes, or structured numbers."""
    t = TABLES[table]
    return [c.name for c in t.columns if c.type == "VARCHAR" and not c.allowed and not c.name.endswith("_id")
            and (table, c.name) not in CARD_NUMBER_COLUMNS | STRUCTURED_COLUMNS]


def refuse_authentication_values(con: Any, rows: dict[str, int]) -> None:
    """Refuse the staged batch if a text column holds track data or a free-text column a card number."""
    failed: list[CheckResult] = []
    for name in rows:
        texts = [c.name for c in TABLES[name].columns if c.type == "VARCHAR"]
        checks = [RowCheck(_track(col(c)), exp.null(), c, "c3_track",
                           lambda _v: "holds what looks like magnetic-stripe track data (C3)", HINT) for c in texts]
        failed += [r for r in screened(con, name, checks) if r.total]
        failed += [r for c in free_text_columns(name) if (r := card_numbers(con, name, c)).total]
    if failed:
        problems = [p for r in failed for p in r.problems]
        total = sum(r.total for r in failed)
        raise AuthenticationDataError(f"{total:,} value(s) look like authentication or card data where none may be "
                                      f"({', '.join(sorted({f'{p.table}.{p.column}' for p in problems}))}); "
                                      f"nothing was published. First: {problems[0]}",
                                      problems=problems, total=total, hint=HINT)


def card_numbers(con: Any, table: str, column: str) -> CheckResult:
    """Rows of a free-text column holding a Luhn-valid card number (first rows located, values never kept)."""
    q = exp.select(col(FILE), col(ROW), col(column)).from_(exp.Table(this=ident(f"stage_{table}"))) \
        .where(_regexp(col(column), PAN_PREFILTER)).order_by(col(FILE), col(ROW))
    found = [(f, r) for f, r, text in con.sql(q.sql(dialect="duckdb")).fetchall() if holds_card_number(text)]
    problems = [Problem("holds what looks like a card number (Luhn-valid) in a free-text column", file=f,
                        table=table, row=r, column=column, rule="c3_card_number") for f, r in found[:SHOWN_ROWS]]
    if len(found) > SHOWN_ROWS:
        problems.append(Problem(f"... and {len(found) - SHOWN_ROWS:,} more rows", table=table, column=column,
                                rule="c3_card_number"))
    return CheckResult("c3_card_number", problems, len(found), HINT)


def _track(value: exp.Expression) -> exp.Expression:
    # a track holds "^" (track 1) or "=" (track 2): a cheap test first, the regular expression on those rows only
    marks = exp.or_(*[exp.Anonymous(this="contains", expressions=[value.copy(), exp.Literal.string(m)])
                      for m in ("^", "=")])
    return exp.and_(marks, _regexp(value.copy(), f"{TRACK_1}|{TRACK_2}"))


def _regexp(value: exp.Expression, pattern: str) -> exp.Expression:
    return exp.Anonymous(this="regexp_matches", expressions=[value, exp.Literal.string(pattern)])
