"""The strategy board (策略管理看板) and the RM workbench (客户经理工作台): pages and their JSON API.

Each page has its data at ``/api/...`` (in the OpenAPI description); both go through a Context acting as the
signed-in principal, so who may see what is decided where the CLI decides it: ``board.read`` and the
``lists.read`` scope for the board, the worklist scope (an RM: their own book), ``customer.read`` with masking
for the customer 360, ``feedback.record`` (the RM's own tasks) for the marketing form. No
``from __future__ import annotations``: FastAPI reads the endpoints' annotations.
"""

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from lifeloop.context import Context
from lifeloop.errors import DataError, LifeloopError
from lifeloop.store.ops.models import OUTCOMES
from lifeloop.web import board
from lifeloop.web.auth import Visit, csrf_passes, forbidden_csrf, form_of, html, refusal, unsigned, visit
from lifeloop.web.schemas import Board, Customer360, OutcomeDone, Worklist, answers, outcome_body

TASK_ID_MAX = 2**63 - 1   # a task id is a 64-bit integer in the operations database; a larger one is no task


def day(text: str | None, what: str = "as_of") -> dt.date | None:
    """A date from a query parameter (empty: none), or a clear refusal."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise DataError(f"{what} {text[:20]!r} is not a date", hint="write it as YYYY-MM-DD") from None


def as_json(value: Any, status: int = 200) -> Any:
    """JSON of a document with dates and decimals as text."""
    from fastapi.responses import Response

    return Response(json.dumps(value, default=str, ensure_ascii=False, allow_nan=False),
                    media_type="application/json", status_code=status)


def _customer_tasks(ctx: Context, customer_id: str) -> list[dict[str, Any]]:
    """The signed-in RM's open tasks for this customer (the marketing forms the 360 page offers)."""
    if not ctx.principal.can("feedback.record") or len(ctx.principal.rm_ids) != 1:
        return []
    return ctx.worklist(customer_id=customer_id)


def acting_with(web: Callable[[], Any]) -> Callable[[Any, bool, Callable[[Any, Context, Visit], Any]], Any]:
    """Run a route's work for the signed-in principal (a Context acting as them), refusals as responses."""
    def acting(request: Any, api: bool, work: Callable[[Any, Context, Visit], Any]) -> Any:
        w = web()
        seen = visit(w, request)
        if seen.principal is None:
            return unsigned(w, seen, api)
        ctx = w.ctx.acting_as(seen.principal)
        try:
            return work(w, ctx, seen)
        except LifeloopError as exc:
            return refusal(w, seen, exc, api)
        finally:
            ctx.close()
    return acting


def changing_with(web: Callable[[], Any]) -> Callable[..., Any]:
    """A state-changing route's work: signed in, the CSRF token, then the Context's method (which audits); the API
    answers its result as JSON, a page redirects to ``back(result)``."""
    acting = acting_with(web)

    async def changing(request: Any, api: bool, work: Callable[[Context, dict[str, str]], Any],
                       back: Callable[[Any], str]) -> Any:
        from fastapi.responses import RedirectResponse
        from starlette.concurrency import run_in_threadpool

        w = web()
        form = await form_of(request)
        seen = await run_in_threadpool(visit, w, request)
        if seen.principal is None:
            return unsigned(w, seen, api)
        if not csrf_passes(w, seen, request, form):
            return forbidden_csrf(w, seen, api)

        def run(w: Any, ctx: Context, seen: Visit) -> Any:
            done = work(ctx, form)
            return as_json(done) if api else RedirectResponse(back(done), status_code=303)
        return await run_in_threadpool(acting, request, api, run)
    return changing


def register(app: Any, web: Callable[[], Any]) -> None:
    """The board and workbench routes."""
    from fastapi import Path, Request

    acting = acting_with(web)

    # ------------------------------------------------------------------ the strategy board
    @app.get("/api/board", tags=["board"], summary="The strategy board (lifeloop.review/1), filtered",
             response_model=Board, responses=answers(401, 403, 404, 422))
    def api_board(request: Request, owner: str = "", objective: str = "", as_of: dt.date | None = None,
                  branch: str = "", interim: bool = False):
        return acting(request, True, lambda w, ctx, seen: as_json(
            board.narrow(w.board(ctx, as_of, branch or None, interim), owner=owner or None,
                         objective=objective or None)))

    @app.get("/board", include_in_schema=False)
    def board_page(request: Request, owner: str = "", objective: str = "", as_of: str = "", branch: str = "",
                   interim: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            full = w.board(ctx, day(as_of), branch or None, bool(interim))
            doc = board.narrow(full, owner=owner or None, objective=objective or None)
            return html(w, seen, "board.html.j2", doc=doc, view=board.rows(doc, seen.lang),
                        options={**board.options(full), "branches": ctx.board_branches()},
                        chosen={"owner": owner, "objective": objective, "as_of": as_of, "branch": branch,
                                "interim": "1" if interim else ""})
        return acting(request, False, work)

    @app.get("/api/board/{strategy}", tags=["board"], summary="One strategy's evaluation with its breakdowns",
             response_model=Board, responses=answers(401, 403, 404, 422))
    def api_strategy(request: Request, strategy: str, as_of: dt.date | None = None, branch: str = "",
                     interim: bool = False):
        return acting(request, True, lambda w, ctx, seen: as_json(board.one(w.board(ctx, as_of, branch or None,
                                                                                     interim), strategy)))

    @app.get("/board/{strategy}", include_in_schema=False)
    def strategy_page(request: Request, strategy: str, as_of: str = "", branch: str = "", interim: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            doc = board.one(w.board(ctx, day(as_of), branch or None, bool(interim)), strategy)
            return html(w, seen, "strategy.html.j2", doc=doc, view=board.rows(doc, seen.lang), as_of=as_of,
                        branch=branch)
        return acting(request, False, work)

    # ------------------------------------------------------------------ the RM workbench
    @app.get("/api/worklist", tags=["workbench"], summary="Open tasks of one RM's own book, most valuable first",
             response_model=Worklist, responses=answers(401, 403, 404, 422))
    def api_worklist(request: Request, rm: str = "", on: dt.date | None = None):
        web().ensure_index()
        return acting(request, True, lambda w, ctx, seen: as_json({"tasks": ctx.worklist(rm or None, on)}))

    @app.get("/worklist", include_in_schema=False)
    def worklist_page(request: Request, rm: str = "", on: str = "", done: str = ""):
        web().ensure_index()

        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            return html(w, seen, "worklist.html.j2", tasks=ctx.worklist(rm or None, day(on, "on")), done=done)
        return acting(request, False, work)

    @app.get("/api/customers/{customer_id}", tags=["workbench"],
             summary="The customer 360, masked for the reader, with the reader's open tasks for them",
             response_model=Customer360, responses=answers(401, 403, 404, 422))
    def api_customer(request: Request, customer_id: str):
        web().ensure_index()
        return acting(request, True, lambda w, ctx, seen: as_json(
            {"profile": ctx.customer(customer_id), "tasks": _customer_tasks(ctx, customer_id)}))

    @app.get("/customers/{customer_id}", include_in_schema=False)
    def customer_page(request: Request, customer_id: str):
        web().ensure_index()

        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            return html(w, seen, "customer.html.j2", profile=ctx.customer(customer_id),
                        tasks=_customer_tasks(ctx, customer_id), outcomes=OUTCOMES)
        return acting(request, False, work)

    changing = changing_with(web)

    async def outcome(request: Any, task_id: int, api: bool) -> Any:
        def record(ctx: Context, form: dict[str, str]) -> dict[str, Any]:
            return ctx.record_outcome(task_id, outcome=form.get("outcome", ""), note=form.get("note"),
                                      referred_name=form.get("referred_name"),
                                      referred_mobile=form.get("referred_mobile"),
                                      referred_rm=form.get("referred_rm"), product_line=form.get("product_line"))
        return await changing(request, api, record, lambda done: f"/worklist?done={done['task_id']}")

    @app.post("/api/tasks/{task_id}/outcome", tags=["workbench"],
              summary="The marketing form: a contact's outcome (a refusal is remembered by the contact gate)",
              response_model=OutcomeDone, responses=answers(401, 403, 404, 422),
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": outcome_body()}}}})
    async def api_outcome(request: Request, task_id: int = Path(ge=1, le=TASK_ID_MAX)):
        return await outcome(request, task_id, True)

    @app.post("/tasks/{task_id}/outcome", include_in_schema=False)
    async def outcome_form(request: Request, task_id: int = Path(ge=1, le=TASK_ID_MAX)):
        return await outcome(request, task_id, False)
