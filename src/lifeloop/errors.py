"""One error tree for Lifeloop.

Every error a user can cause is a :class:`LifeloopError` that says *what* was wrong, *where*
(file, line, table, row, column, rule, field) and *what to do*. Entry points (CLI, API) translate
these once; core code never raises CLI or HTTP exceptions.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One located problem: a row that failed a check, a config field that is invalid, ..."""

    message: str
    file: str | None = None
    line: int | None = None
    table: str | None = None
    row: int | None = None
    column: str | None = None
    rule: str | None = None
    field: str | None = None
    hint: str | None = None      # what to do about this one problem (``lifeloop check`` prints it as the fix)

    def where(self) -> str:
        """A short 'where' text such as ``customers.csv row 12, column birth_date``."""
        parts: list[str] = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.table and (not self.file or self.table not in self.file):
            parts.append(f"table {self.table}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        if self.rule:
            parts.append(f"rule {self.rule}")
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message


class LifeloopError(Exception):
    """Base of every error Lifeloop raises on purpose."""

    exit_code = 1  # what the CLI exits with

    def __init__(self, message: str, *, hint: str | None = None, problems: list[Problem] | None = None,
                 total: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.problems = list(problems or [])
        # total number of problems found, when only the first few are kept in ``problems``
        self.total = total if total is not None else len(self.problems)

    def render(self, limit: int = 20) -> str:
        """The full text shown to a user: message, located problems (capped), hint."""
        lines = [self.message]
        for p in self.problems[:limit]:
            lines.append(f"  - {p}" + (f" (fix: {p.hint})" if p.hint else ""))
        more = self.total - min(len(self.problems), limit)
        if more > 0:
            lines.append(f"  ... and {more:,} more")
        if self.hint:
            lines.append(f"What to do: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class ConfigError(LifeloopError):
    """A configuration file (lifeloop.yaml, config/*.yaml, a mapping) is invalid."""


class RuleError(ConfigError):
    """A user-written rule or expression is not allowed or does not type-check."""


class WorkspaceError(LifeloopError):
    """The workspace is missing, incomplete or not initialised."""


class IngestError(LifeloopError):
    """Source data cannot be read or mapped onto the canonical model."""


class ValidationError(IngestError):
    """Source data was read but failed validation; nothing was published."""


class EventError(IngestError):
    """An event (real-time intake) does not match its declared schema; nothing of its batch was stored."""


class DataError(LifeloopError):
    """Published data needed by a step is missing or inconsistent."""


class EngineError(LifeloopError):
    """The engine failed to run a compiled query (a bug or an environment problem)."""


class OpsDatabaseError(LifeloopError):
    """The operations database cannot be reached, is not migrated, or refused a change."""


class NotFoundError(LifeloopError):
    """A named thing (customer, snapshot, strategy) does not exist."""


class Interrupted(LifeloopError):
    """The user pressed Ctrl-C (SIGINT); what was being written is not published."""

    exit_code = 130


_MAX_SPELLING_CANDIDATES = 20_000   # difflib compares one by one; a bank's millions of ids are narrowed first


def closest(value: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Known ids closest to ``value`` for a "did you mean": the same id in another case first, then near spellings.

    Ids are case-sensitive (``rm00002`` is not ``RM00002``); a case mismatch is the commonest slip, so it
    is always found, however many ids there are.
    """
    ids = [k for k in dict.fromkeys(known) if isinstance(k, str)]
    folded = value.casefold()
    same = [k for k in ids if k.casefold() == folded and k != value]
    if same:
        return same[:n]
    # many ids (a bank's customers): only those of about the same length sharing the longest prefix that
    # leaves few enough to compare -- a slip late in the id is found, one in its first letters may not be
    ids = [k for k in ids if abs(len(k) - len(value)) <= 1]
    prefix = 1
    while len(ids) > _MAX_SPELLING_CANDIDATES and prefix <= len(folded):
        ids = [k for k in ids if k[:prefix].casefold() == folded[:prefix]]
        prefix += 1
    by_fold = {}
    for k in ids:
        by_fold.setdefault(k.casefold(), k)
    return [by_fold[m] for m in difflib.get_close_matches(folded, list(by_fold), n=n)]


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` (or two or three ids), or an empty string when nothing is close."""
    found = closest(value, known)
    return f"; did you mean {' or '.join(repr(k) for k in found)}?" if found else ""
