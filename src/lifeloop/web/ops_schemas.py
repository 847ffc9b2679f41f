"""What the operations pages' API answers and takes, for ``/openapi.json`` (see :mod:`lifeloop.web.schemas`).

The routes build their JSON themselves (dates as text); these models describe it so schemathesis can check every
answer. Request bodies are JSON schemas (a form body has the same names).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class RunDays(BaseModel):
    """The run log by as-of date, newest first."""

    days: list[dict[str, Any]]


class RunDay(BaseModel):
    """One as-of date step by step."""

    as_of: str
    steps: list[dict[str, Any]]


class ListCounts(BaseModel):
    """A day's lists counted per strategy x wave x channel, over the reader's scope."""

    as_of: str | None
    scope: str | list[str]
    cells: list[dict[str, Any]]
    totals: dict[str, Any]


class ListRows(BaseModel):
    """The rows of one counted cell (at most the limit), and how many there are."""

    as_of: str
    rows: list[dict[str, Any]]
    shown: int
    total: int


class Outbox(BaseModel):
    """The outbox of the last days per day x channel x status, and the contacts of unknown outcome."""

    since: str | None
    counts: list[dict[str, Any]]
    unknown: list[dict[str, Any]]


class Resolved(BaseModel):
    """A contact of unknown outcome after an operator's decision."""

    key: str
    customer_id: str
    channel: str
    status: str


class Approvals(BaseModel):
    requests: list[dict[str, Any]]


class Decided(BaseModel):
    """What an approval or rejection did: the requests decided, items released and cancelled."""

    approvals: list[str]
    released: int
    cancelled: int


class AuditPage(BaseModel):
    """One page of an audit search, newest first."""

    entries: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    pages: int


class AuditVerified(BaseModel):
    """``lifeloop audit verify``'s result."""

    ok: bool
    checked: int
    head_id: int | None
    head_hash: str
    anchor_id: int | None
    breaks: list[str]


class Why(BaseModel):
    """``lifeloop why`` as data: the day's decisions about one customer, masked for the reader."""

    model_config = ConfigDict(extra="allow")


class Threads(BaseModel):
    """Questions to strategy owners the reader may see."""

    threads: list[dict[str, Any]]


class Thread(BaseModel):
    """One question with its posts (the question first, then replies and follow-ups)."""

    model_config = ConfigDict(extra="allow")

    id: int
    strategy: str
    posts: list[dict[str, Any]]


class Leads(BaseModel):
    """An RM's open leads."""

    leads: list[dict[str, Any]]


def resolve_body() -> dict[str, Any]:
    """An operator's decision on a contact of unknown outcome: sent, or not sent (``resend``: send it again)."""
    reason = {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"\S"}
    return {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["outcome", "reason"],
         "properties": {"outcome": {"type": "string", "enum": ["sent"]}, "reason": reason}},
        {"type": "object", "additionalProperties": False, "required": ["outcome", "reason"],
         "properties": {"outcome": {"type": "string", "enum": ["not-sent"]}, "reason": reason,
                        "resend": {"type": "boolean"}}}]}


def decide_body() -> dict[str, Any]:
    """An approver's decision on a held day (or one strategy's or channel's part of it), with a reason."""
    return {"type": "object", "additionalProperties": False, "required": ["decision", "reason"],
            "properties": {"decision": {"type": "string", "enum": ["approve", "reject"]},
                           "reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"\S"},
                           "strategy": {"type": "string", "maxLength": 64},
                           "channel": {"type": "string", "maxLength": 16}}}
