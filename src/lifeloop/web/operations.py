"""The operations pages (运营管理) and their JSON API: runs and their steps, the day's lists counted, the outbox with
the operator's decisions, approvals waiting, the audit log searched, and ``why`` for a customer and a day.

Every route acts through a Context for the signed-in principal, so each page is the CLI's command with the CLI's
rules: ``runs.read`` for runs and lists (the lists over the reader's ``lists.read`` scope), ``outbox.resolve``
(``lifeloop outbox``), ``approvals.read`` / ``approvals.decide`` (``lifeloop approve``: never the requester),
``audit.read`` (``lifeloop audit verify``; a search is itself audited), ``why.read`` scoped (``lifeloop why``).
Every POST carries the session's CSRF token and is audited by the store it calls. View shaping is in
:mod:`lifeloop.web.ops_views`. No ``from __future__ import annotations``: FastAPI reads the annotations.
"""

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from lifeloop.context import Context
from lifeloop.data.access import not_visible
from lifeloop.errors import LifeloopError, NotFoundError
from lifeloop.web import ops_views
from lifeloop.web.auth import Visit, html
from lifeloop.web.ops_schemas import (
    Approvals,
    AuditPage,
    AuditVerified,
    Decided,
    ListCounts,
    ListRows,
    Outbox,
    Resolved,
    RunDay,
    RunDays,
    Why,
    decide_body,
    resolve_body,
)
from lifeloop.web.pages import acting_with, as_json, changing_with, day
from lifeloop.web.schemas import answers

ROWS = 200        # rows a list drill-down shows at most (the counts say how many there are)
PER_PAGE = 50     # audit entries per page
TRUE = ("1", "true", "True", "on", "yes")


def latest_plan(ctx: Context, as_of: dt.date | None) -> dt.date:
    """The day ``why`` replays: the one asked for, else the newest planned day."""
    if as_of is not None:
        return as_of
    planned = ctx.lake.dates("lists")
    if not planned:
        raise NotFoundError("nothing has been planned yet")
    return planned[-1]


def resolve(ctx: Context, key: str, form: dict[str, str]) -> dict[str, Any]:
    """``lifeloop outbox resolve KEY sent|not-sent --reason TEXT [--resend]`` from a form or JSON body."""
    item = ctx.resolve_unknown(key, form.get("outcome", ""), form.get("reason", ""),  # type: ignore[arg-type]
                               resend=form.get("resend", "") in TRUE)
    return {"key": item.idempotency_key, "customer_id": item.customer_id, "channel": item.channel,
            "status": item.status}


def decide(ctx: Context, as_of: dt.date, form: dict[str, str]) -> dict[str, Any]:
    """``lifeloop approve`` / ``reject`` of a held day (or of one strategy's or channel's part of it)."""
    ctx.require("approvals.decide", "approve or reject a send")
    decision = form.get("decision", "")
    if decision not in ("approve", "reject"):
        raise LifeloopError(f"unknown decision {decision[:20]!r}", hint="choose approve or reject")
    return ctx.decide_approval(as_of, approve=decision == "approve", reason=form.get("reason", ""),
                               strategy=form.get("strategy") or None, channel=form.get("channel") or None)


def register(app: Any, web: Callable[[], Any]) -> None:
    """The operations routes."""
    from fastapi import Path, Query, Request

    acting = acting_with(web)

    changing = changing_with(web)

    # ------------------------------------------------------------------ the index
    @app.get("/ops", include_in_schema=False)
    def ops_page(request: Request):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            shown = ops_views.sections(p for p in ("runs.read", "outbox.resolve", "approvals.read", "audit.read",
                                                   "why.read") if ctx.principal.can(p))
            if not [s for s in shown if s["name"] != "why"]:
                ctx.require("runs.read", "open the operations pages")
            return html(w, seen, "ops_index.html.j2", sections=shown)
        return acting(request, False, work)

    # ------------------------------------------------------------------ runs and their steps
    @app.get("/api/runs", tags=["operations"], summary="The run log by as-of date: steps published, rows, times",
             response_model=RunDays, responses=answers(401, 403))
    def api_runs(request: Request):
        return acting(request, True, lambda w, ctx, seen: as_json({"days": ctx.runs()}))

    @app.get("/ops/runs", include_in_schema=False)
    def runs_page(request: Request):
        return acting(request, False, lambda w, ctx, seen: html(w, seen, "ops_runs.html.j2", days=ctx.runs()))

    @app.get("/api/runs/{as_of}", tags=["operations"],
             summary="One as-of date step by step: run ids, rows, inputs, config hash, every publish",
             response_model=RunDay, responses=answers(401, 403, 404, 422))
    def api_run_day(request: Request, as_of: dt.date):
        return acting(request, True, lambda w, ctx, seen: as_json(ctx.run_day(as_of)))

    @app.get("/ops/runs/{as_of}", include_in_schema=False)
    def run_day_page(request: Request, as_of: str):
        return acting(request, False, lambda w, ctx, seen: html(w, seen, "ops_run_day.html.j2",
                                                                run=ctx.run_day(day(as_of) or dt.date.min)))

    # ------------------------------------------------------------------ the day's lists
    @app.get("/api/lists", tags=["operations"],
             summary="A day's lists counted per strategy x wave x channel: contact, control, dropped by reason",
             response_model=ListCounts, responses=answers(401, 403, 404, 422))
    def api_lists(request: Request, as_of: dt.date | None = None):
        return acting(request, True, lambda w, ctx, seen: as_json(ctx.list_counts(as_of)))

    @app.get("/ops/lists", include_in_schema=False)
    def lists_page(request: Request, as_of: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            doc = ctx.list_counts(day(as_of))
            return html(w, seen, "ops_lists.html.j2", doc=doc, cells=ops_views.list_links(doc["as_of"], doc["cells"]),
                        days=[d.isoformat() for d in reversed(ctx.lake.dates("lists")[-30:])])
        return acting(request, False, work)

    @app.get("/api/lists/rows", tags=["operations"],
             summary="The rows of one counted cell (at most 200), scoped, money banded for the reader",
             response_model=ListRows, responses=answers(401, 403, 404, 422))
    def api_list_rows(request: Request, as_of: dt.date, strategy: str = "", wave: str = "", channel: str = "",
                      status: str = "", dropped_by: str = ""):
        return acting(request, True, lambda w, ctx, seen: as_json(ctx.list_rows(
            as_of, strategy=strategy, wave=wave, channel=channel, status=status, dropped_by=dropped_by,
            limit=ROWS)))

    @app.get("/ops/lists/rows", include_in_schema=False)
    def list_rows_page(request: Request, as_of: str = "", strategy: str = "", wave: str = "", channel: str = "",
                       status: str = "", dropped_by: str = ""):
        chosen = {"strategy": strategy, "wave": wave, "channel": channel, "status": status, "dropped_by": dropped_by}

        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            when = day(as_of)
            if when is None:
                raise NotFoundError("say which day")
            doc = ctx.list_rows(when, limit=ROWS, **chosen)
            return html(w, seen, "ops_list_rows.html.j2", doc=doc, chosen=chosen,
                        back=ops_views.link("/ops/lists", as_of=as_of))
        return acting(request, False, work)

    # ------------------------------------------------------------------ the outbox
    @app.get("/api/outbox", tags=["operations"],
             summary="The outbox of the last 14 list dates (sent, waiting, unknown ...), contacts of unknown outcome",
             response_model=Outbox, responses=answers(401, 403))
    def api_outbox(request: Request):
        return acting(request, True, lambda w, ctx, seen: as_json(ctx.outbox_overview()))

    @app.get("/ops/outbox", include_in_schema=False)
    def outbox_page(request: Request, done: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            doc = ctx.outbox_overview()
            rows = ops_views.outbox_rows(doc["counts"])
            return html(w, seen, "ops_outbox.html.j2", doc=doc, rows=rows, totals=ops_views.outbox_totals(rows),
                        done=done[:128])
        return acting(request, False, work)

    @app.post("/api/outbox/{key}/resolve", tags=["operations"],
              summary="Resolve a contact of unknown outcome: sent, not sent, or not sent and sent again (audited)",
              response_model=Resolved, responses=answers(401, 403, 404, 422),
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": resolve_body()}}}})
    async def api_resolve(request: Request, key: str = Path(min_length=1, max_length=128)):
        return await changing(request, True, lambda ctx, form: resolve(ctx, key, form), lambda d: "")

    @app.post("/ops/outbox/{key}/resolve", include_in_schema=False)
    async def resolve_form(request: Request, key: str = Path(min_length=1, max_length=128)):
        return await changing(request, False, lambda ctx, form: resolve(ctx, key, form),
                              lambda d: ops_views.link("/ops/outbox", done=d["key"]))

    # ------------------------------------------------------------------ approvals
    @app.get("/api/approvals", tags=["operations"],
             summary="Requests for a second person's approval (pending; all=true: decided ones too)",
             response_model=Approvals, responses=answers(401, 403))
    def api_approvals(request: Request, all: bool = False):   # noqa: A002 - the query parameter's name
        return acting(request, True, lambda w, ctx, seen: as_json(
            {"requests": ctx.approval_requests(pending_only=not all)}))

    @app.get("/ops/approvals", include_in_schema=False)
    def approvals_page(request: Request, done: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            decided = [a for a in ctx.approval_requests(pending_only=False) if a["status"] != "pending"]
            return html(w, seen, "ops_approvals.html.j2", pending=ctx.approval_requests(), decided=decided[-20:],
                        may_decide=ctx.principal.can("approvals.decide"), done=done[:10])
        return acting(request, False, work)

    @app.post("/api/approvals/{as_of}/decide", tags=["operations"],
              summary="Approve or reject a held day's send (never by its requester; audited)",
              response_model=Decided, responses=answers(401, 403, 404, 422),
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": decide_body()}}}})
    async def api_decide(request: Request, as_of: dt.date):
        return await changing(request, True, lambda ctx, form: decide(ctx, as_of, form), lambda d: "")

    @app.post("/ops/approvals/{as_of}/decide", include_in_schema=False)
    async def decide_form(request: Request, as_of: dt.date):
        return await changing(request, False, lambda ctx, form: decide(ctx, as_of, form),
                              lambda d: ops_views.link("/ops/approvals", done=as_of.isoformat()))

    # ------------------------------------------------------------------ the audit log
    @app.get("/api/audit", tags=["operations"],
             summary="Search the audit log (newest first, 50 a page); the search is itself audited",
             response_model=AuditPage, responses=answers(401, 403, 422))
    def api_audit(request: Request, actor: Annotated[str, Query(max_length=64)] = "",
                  action: Annotated[str, Query(max_length=64)] = "", target: Annotated[str, Query(max_length=128)] = "",
                  start: Annotated[dt.date | None, Query(alias="from")] = None,
                  end: Annotated[dt.date | None, Query(alias="to")] = None,
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1):
        return acting(request, True, lambda w, ctx, seen: as_json(ctx.audit_search(
            actor=actor, action=action, target=target, start=start, end=end, page=page, per_page=PER_PAGE)))

    @app.get("/api/audit/verify", tags=["operations"], summary="Verify the audit log's hash chain (audit verify)",
             response_model=AuditVerified, responses=answers(401, 403))
    def api_audit_verify(request: Request):
        return acting(request, True, lambda w, ctx, seen: as_json(ops_views.verification(ctx.audit_verify())))

    @app.get("/ops/audit", include_in_schema=False)
    def audit_page(request: Request, actor: str = "", action: str = "", target: str = "", page: str = "1",
                   start: Annotated[str, Query(alias="from")] = "", end: Annotated[str, Query(alias="to")] = ""):
        filters = {"actor": actor[:64], "action": action[:64], "target": target[:128], "from": start, "to": end}

        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            number = int(page) if page.isdigit() and 0 < int(page) <= 100_000 else 1
            found = ctx.audit_search(actor=filters["actor"], action=filters["action"], target=filters["target"],
                                     start=day(start, "from"), end=day(end, "to"), page=number, per_page=PER_PAGE)
            return html(w, seen, "ops_audit.html.j2", found=found, filters=filters,
                        verified=ops_views.verification(ctx.audit_verify()),
                        pager=ops_views.pager(number, found["pages"], **filters))
        return acting(request, False, work)

    # ------------------------------------------------------------------ why
    @app.get("/api/why/{customer_id}", tags=["operations"],
             summary="Why (决策回放): every decision about a customer on a day, masked for the reader",
             response_model=Why, responses=answers(401, 403, 404, 422))
    def api_why(request: Request, customer_id: str = Path(max_length=64), as_of: dt.date | None = None):
        return acting(request, True, lambda w, ctx, seen: as_json(
            ctx.why(customer_id, latest_plan(ctx, as_of), known_only=True)))

    @app.get("/ops/why", include_in_schema=False)
    def why_page(request: Request, customer: str = "", as_of: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            ctx.require("why.read", "replay decisions")
            report = None
            if customer:
                if len(customer) > 64:
                    raise not_visible("customer", customer[:64])
                report = ctx.why(customer, latest_plan(ctx, day(as_of)), known_only=True)
            return html(w, seen, "ops_why.html.j2", report=report, customer=customer, as_of=as_of)
        return acting(request, False, work)
