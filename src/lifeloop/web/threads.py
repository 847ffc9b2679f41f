"""Questions and feedback to a strategy's owner (营销人员问题反馈与沟通): pages and their JSON API.

An RM asks from their worklist or a customer's page (``/threads?strategy=&customer=``); head office (analyst,
admin: the strategy owners' side) answers; the asker may follow up. An RM reads their own questions and the
replies, a branch manager their branch's, head office all (``threads.read`` scope, decided on the asker's book
and branch); another's question is the same 404 as one that does not exist. The strategy page of the board
loads the strategy's questions the reader may see (``/threads/about/STRATEGY``). No
``from __future__ import annotations``: FastAPI reads the annotations.
"""

from collections.abc import Callable
from typing import Any

from lifeloop.context import Context
from lifeloop.web.auth import Visit, html
from lifeloop.web.ops_schemas import Thread, Threads
from lifeloop.web.ops_views import link
from lifeloop.web.pages import acting_with, as_json, changing_with
from lifeloop.web.schemas import answers

THREAD_ID_MAX = 2**63 - 1


def ask_body() -> dict[str, Any]:
    """A question: the strategy, a subject, the text, and the customer it is about (one of the asker's own)."""
    return {"type": "object", "additionalProperties": False, "required": ["strategy", "subject", "text"],
            "properties": {"strategy": {"type": "string", "minLength": 1, "maxLength": 64},
                           "subject": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
                           "text": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"\S"},
                           "customer_id": {"type": "string", "maxLength": 64}}}


def post_body() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["text"],
            "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"\S"}}}


def register(app: Any, web: Callable[[], Any]) -> None:
    """The questions' routes."""
    from fastapi import Path, Request

    acting = acting_with(web)

    changing_back = changing_with(web)

    async def changing(request: Any, api: bool, work: Callable[[Context, dict[str, str]], dict[str, Any]]) -> Any:
        return await changing_back(request, api, work, lambda done: f"/threads/{done['id']}")

    def ask(ctx: Context, form: dict[str, str]) -> dict[str, Any]:
        return ctx.ask_owner(form.get("strategy", ""), subject=form.get("subject", ""), text=form.get("text", ""),
                             customer_id=form.get("customer_id") or None)

    # ------------------------------------------------------------------ the list and the question form
    @app.get("/api/threads", tags=["questions"],
             summary="Questions to strategy owners the reader may see (an RM: their own), newest activity first",
             response_model=Threads, responses=answers(401, 403))
    def api_threads(request: Request, strategy: str = ""):
        return acting(request, True, lambda w, ctx, seen: as_json(
            {"threads": ctx.strategy_threads(strategy or None)}))

    @app.get("/threads", include_in_schema=False)
    def threads_page(request: Request, strategy: str = "", customer: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            threads = ctx.strategy_threads()
            may_ask = ctx.principal.can("threads.ask")
            strategies = sorted(ctx.strategy_ids()) if may_ask else []
            return html(w, seen, "threads.html.j2", threads=threads, may_ask=may_ask, strategies=strategies,
                        chosen={"strategy": strategy[:64], "customer": customer[:64]})
        return acting(request, False, work)

    @app.post("/api/threads", tags=["questions"],
              summary="Ask a strategy's owner a question (an RM or a branch manager; audited)",
              response_model=Thread, responses=answers(401, 403, 404, 422),
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": ask_body()}}}})
    async def api_ask(request: Request):
        return await changing(request, True, ask)

    @app.post("/threads", include_in_schema=False)
    async def ask_form(request: Request):
        return await changing(request, False, ask)

    # ------------------------------------------------------------------ one question and its replies
    @app.get("/api/threads/{thread_id}", tags=["questions"], summary="One question with its replies",
             response_model=Thread, responses=answers(401, 403, 404, 422))
    def api_thread(request: Request, thread_id: int = Path(ge=1, le=THREAD_ID_MAX)):
        return acting(request, True, lambda w, ctx, seen: as_json(ctx.strategy_thread(thread_id)))

    @app.get("/threads/{thread_id}", include_in_schema=False)
    def thread_page(request: Request, thread_id: int = Path(ge=1, le=THREAD_ID_MAX)):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            thread = ctx.strategy_thread(thread_id)
            may_post = ctx.principal.can("threads.reply") or thread["asked_by"] == ctx.principal.user_id
            return html(w, seen, "thread.html.j2", thread=thread, may_post=may_post)
        return acting(request, False, work)

    @app.post("/api/threads/{thread_id}/posts", tags=["questions"],
              summary="Reply (head office) or follow up (the asker) on a question; audited",
              response_model=Thread, responses=answers(401, 403, 404, 422),
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": post_body()}}}})
    async def api_post(request: Request, thread_id: int = Path(ge=1, le=THREAD_ID_MAX)):
        return await changing(request, True, lambda ctx, form: ctx.post_to_thread(thread_id, form.get("text", "")))

    @app.post("/threads/{thread_id}/posts", include_in_schema=False)
    async def post_form(request: Request, thread_id: int = Path(ge=1, le=THREAD_ID_MAX)):
        return await changing(request, False, lambda ctx, form: ctx.post_to_thread(thread_id, form.get("text", "")))

    # ------------------------------------------------------------------ on the board's strategy page
    @app.get("/threads/about/{strategy}", include_in_schema=False)
    def about(request: Request, strategy: str):
        """The strategy's questions the reader may see, as a fragment the board's strategy page loads."""
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            return html(w, seen, "_threads_about.html.j2", threads=ctx.strategy_threads(strategy[:64]),
                        strategy=strategy[:64], ask=link("/threads", strategy=strategy[:64]),
                        may_ask=ctx.principal.can("threads.ask"))
        return acting(request, False, work)
