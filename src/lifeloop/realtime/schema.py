"""The declared schema of real-time events (实时事件): what an event source may send, checked field by field.

Four kinds, told apart by ``kind``; every event has its source's own ``event_id`` (intake is idempotent on
it), the ``customer_id`` and ``occurred_at`` (an instant with its UTC offset: a local time without one would
be a guess):

* ``transaction`` — a posting from core banking: amount, direction, txn_type (the canonical codes), the
  counterparty, the balance after it, and ``payroll`` (代发: the payer's payroll code was on it);
* ``app`` — app tracking (埋点): ``login``, ``page_view``, ``product_view``, ``abandoned_purchase`` (a
  purchase started and left), ``purchase``, with the product or page;
* ``card_swipe`` — a card payment (刷卡) with the card and amount;
* ``core_notice`` — a notice from core banking: ``card_activated``, ``account_opened``, ``deposit_matured``,
  ``product_purchased``.

Unknown fields are refused (a misspelt field is a bug in the source, not something to drop silently).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from lifeloop.data.schema import COUNTERPARTY_KINDS, DIRECTIONS, TXN_CHANNELS, TXN_TYPES
from lifeloop.errors import EventError, Problem

Amount = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=2)]
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
CustomerId = Annotated[str, Field(min_length=1, max_length=64)]
Code = Annotated[str, Field(min_length=1, max_length=64)]
APP_ACTIONS = ("login", "page_view", "product_view", "abandoned_purchase", "purchase")
NOTICES = ("card_activated", "account_opened", "deposit_matured", "product_purchased")
MAX_BATCH = 5_000   # events in one HTTP request or one file chunk


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    customer_id: CustomerId
    occurred_at: AwareDatetime


class TransactionEvent(_Event):
    """A posting (交易) from core banking."""

    kind: Literal["transaction"]
    amount: Amount
    direction: Literal[DIRECTIONS]  # type: ignore[valid-type]
    txn_type: Literal[TXN_TYPES]  # type: ignore[valid-type]
    counterparty_kind: Literal[COUNTERPARTY_KINDS] | None = None  # type: ignore[valid-type]
    channel: Literal[TXN_CHANNELS] | None = None  # type: ignore[valid-type]
    account_id: Code | None = None
    balance_after: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    payroll: bool = False   # 代发: the credit carried the paying employer's payroll code


class AppEvent(_Event):
    """App tracking (埋点)."""

    kind: Literal["app"]
    action: Literal[APP_ACTIONS]  # type: ignore[valid-type]
    product_id: Code | None = None
    page: Annotated[str, Field(max_length=256)] | None = None


class CardSwipeEvent(_Event):
    """A card payment (刷卡)."""

    kind: Literal["card_swipe"]
    card_id: Code
    amount: Amount
    merchant_category: Code | None = None


class CoreNoticeEvent(_Event):
    """A notice from core banking (核心通知)."""

    kind: Literal["core_notice"]
    notice: Literal[NOTICES]  # type: ignore[valid-type]
    product_id: Code | None = None
    account_id: Code | None = None
    card_id: Code | None = None
    amount: Amount | None = None


AnyEvent = Annotated[TransactionEvent | AppEvent | CardSwipeEvent | CoreNoticeEvent, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyEvent)
KINDS = ("transaction", "app", "card_swipe", "core_notice")


def parse_event(raw: Any, *, where: str = "event", row: int | None = None) -> Any:
    """One event from a decoded JSON object (or a CSV row's dict), or an :class:`EventError` naming each field."""
    try:
        return _ADAPTER.validate_python(raw)
    except PydanticValidationError as exc:
        raise EventError(f"{where}: the event does not match its schema", problems=problems_of(exc, where, row, raw),
                         hint=schema_hint(raw)) from None


def parse_events(raws: list[Any], *, where: str = "events") -> list[Any]:
    """Every event of a batch, or one error naming every bad one (row, field): all or nothing."""
    if len(raws) > MAX_BATCH:
        raise EventError(f"{where}: {len(raws):,} events in one batch; at most {MAX_BATCH:,}",
                         hint=f"send at most {MAX_BATCH:,} events per request (or split the file)")
    out, problems = [], []
    for i, raw in enumerate(raws, start=1):
        try:
            out.append(_ADAPTER.validate_python(raw))
        except PydanticValidationError as exc:
            problems.extend(problems_of(exc, where, i, raw))
    if problems:
        rows = len({p.row for p in problems})
        raise EventError(f"{where}: {rows:,} of {len(raws):,} events do not match their schema; none was stored",
                         problems=problems[:50], total=len(problems),
                         hint="fix the fields named above and send the batch again (accepted ids are idempotent)")
    return out


def problems_of(exc: PydanticValidationError, where: str, row: int | None, raw: Any) -> list[Problem]:
    """One located problem per failed field: ``events.jsonl row 3, field amount: ...``."""
    out = []
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in KINDS:   # the discriminator's branch name is not a field of the event
            loc = loc[1:]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (not in the event's schema)"
        elif err["type"] == "missing":
            message = "required field is missing"
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            message = f"kind must be one of {', '.join(KINDS)}"
            loc = ["kind"]
        if event_id and isinstance(event_id, str):
            message += f" (event_id {event_id})"
        out.append(Problem(message, file=where if where != "event" else None, row=row, field=".".join(loc) or None))
    return out


def schema_hint(raw: Any) -> str:
    kind = raw.get("kind") if isinstance(raw, dict) else None
    return (f"see docs/realtime.md, 'Event schema', for the fields of a {kind} event" if kind in KINDS
            else "every event needs kind (transaction, app, card_swipe, core_notice), event_id, customer_id, "
                 "occurred_at; see docs/realtime.md")


def local_date(at: dt.datetime, timezone: str) -> dt.date:
    """The bank's local date of an instant."""
    return at.astimezone(ZoneInfo(timezone)).date()


def body_of(event: Any) -> dict[str, Any]:
    """The validated event as JSON-ready data (what is stored in ``events.body``)."""
    return event.model_dump(mode="json", exclude_none=True)
