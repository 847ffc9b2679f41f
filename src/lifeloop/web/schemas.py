"""What the API's routes answer, for the OpenAPI description (``/openapi.json``): the bodies and status codes.

The routes build their JSON themselves (dates and decimals as text); these models only describe it, so the
description is honest — schemathesis checks every answer against it (tests/integration/test_web_schemathesis.py).
The board's documents are lifeloop.review/1 (docs/review.md): described as objects, not field by field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lifeloop.store.ops.models import OUTCOMES


class ErrorBody(BaseModel):
    """A refusal: what went wrong and, for the user's own mistakes, what to do."""

    error: str
    hint: str | None = None
    retry_after_seconds: float | None = None


class Board(BaseModel):
    """The board (lifeloop.review/1, narrowed by the filters) or one strategy's evaluation."""

    model_config = ConfigDict(extra="allow")


class Kpis(BaseModel):
    """Lifecycle flows and KPIs of a period (lifeloop.kpis/1, docs/review.md), narrowed to the reader: with
    ``bank_wide_hidden`` only the sales of the reader's (or the chosen) branches."""

    model_config = ConfigDict(extra="allow")
    bank_wide_hidden: bool


class DailySalesRow(BaseModel):
    day: str
    branch_id: str | None
    product_type: str | None
    accounts: int
    customers: int
    amount: float | str


class DailySales(BaseModel):
    """每日销售报表: new accounts per day, branch and product type (docs/web.md "Daily sales report")."""

    model_config = ConfigDict(extra="allow")   # also "from" and "to": the period's first and last day
    rows: list[DailySalesRow]


class Worklist(BaseModel):
    tasks: list[dict[str, Any]]


class Customer360(BaseModel):
    profile: dict[str, Any]
    tasks: list[dict[str, Any]]


def outcome_body() -> dict[str, Any]:
    """The marketing form's JSON body (a form body has the same names): an outcome, a note; a referral names the
    referred person (a name with a letter in it) and may name the product line and the RM (of the branch) it is
    referred to; no other outcome does."""
    note = {"type": "string", "maxLength": 2000}
    others = [o for o in OUTCOMES if o != "referral"]
    return {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["outcome"],
         "properties": {"outcome": {"type": "string", "enum": others}, "note": note}},
        {"type": "object", "additionalProperties": False, "required": ["outcome", "referred_name"],
         "properties": {"outcome": {"type": "string", "enum": ["referral"]}, "note": note,
                        "referred_name": {"type": "string", "pattern": r"^\S.{0,62}\S?$"},
                        "referred_mobile": {"type": "string", "pattern": r"^1[3-9][0-9]{9}$"},
                        "referred_rm": {"type": "string", "maxLength": 64},
                        "product_line": {"type": "string", "maxLength": 64}}}]}


class OutcomeDone(BaseModel):
    model_config = ConfigDict(extra="allow")


class Receipt(BaseModel):
    accepted: int
    duplicates: int
    duplicate_ids: list[str]


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The refusals a route may give, each with the ErrorBody: for FastAPI's ``responses=``."""
    said = {400: "Bad request", 401: "Not signed in (or no service token)", 403: "Not allowed, or no CSRF token",
            404: "Not found among what you may see", 409: "Not possible in its current state",
            422: "The request's mistake: message and hint",
            429: "Over the rate limit", 503: "The operations database is unavailable"}
    return {code: {"model": ErrorBody, "description": said[code]} for code in codes}
