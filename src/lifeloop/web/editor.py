"""The strategy map editor (策略图谱编辑, maker-checker 双人复核; 一行一策): pages and their JSON API.

``/strategies`` the live map (segment x stage grid, coverage heat map, each strategy's live version and pending
drafts); ``/strategies/S`` its versions, a diff, and the buttons the reader's roles allow (submit, approve,
reject, revert); ``/strategies/S/edit`` the draft form (YAML with structured fields for the main ones), checked
live through htmx with the audience count. Everything acts through a Context for the signed-in principal
(:mod:`lifeloop.strategy.editor`): ``strategies.read`` / ``.edit`` / ``.approve``, a branch manager's variants of
their own branch only, never the author's own approval; another branch's variant is "not found". docs/web.md.
No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations.
"""

from collections.abc import Callable
from typing import Any, Literal

from lifeloop.context import Context
from lifeloop.data.access import not_visible
from lifeloop.errors import ConfigError, LifeloopError
from lifeloop.strategy import editor as editing
from lifeloop.strategy.versions import VersionError
from lifeloop.web.auth import Visit, csrf_passes, forbidden_csrf, form_of, html, refusal, unsigned, visit
from lifeloop.web.pages import as_json
from lifeloop.web.schemas import answers

VERSION_MAX = 2**31 - 1
ACTIONS = ("submit", "approve", "reject", "revert")
STRATEGY_ID = r"^[A-Za-z0-9_]{1,64}$"


def draft_body() -> dict[str, Any]:
    """The JSON body of a draft (or a preview): the strategy's YAML text, an optional branch and note."""
    return {"type": "object", "additionalProperties": False, "required": ["definition"],
            "properties": {"definition": {"type": "string", "minLength": 1, "maxLength": editing.MAX_TEXT},
                           "branch": {"type": "string", "pattern": r"^[A-Za-z0-9_\-]{1,64}$"},
                           "note": {"type": "string", "maxLength": 2000},
                           "version": {"type": "integer", "minimum": 1, "maximum": VERSION_MAX}}}


def decision_body() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "properties": {"comment": {"type": "string", "maxLength": 2000}}}


def _version(text: str | None) -> int | None:
    try:
        v = int(text or "")
    except ValueError:
        return None
    return v if 1 <= v <= VERSION_MAX else None


def conflict(w: Any, seen: Visit, exc: VersionError, api: bool) -> Any:
    """409 with the message and what to do (a version already submitted, a rejection without a comment ...)."""
    from fastapi.responses import JSONResponse

    if api:
        return JSONResponse({"error": exc.message, **({"hint": exc.hint} if exc.hint else {})}, status_code=409)
    return html(w, seen, "error.html.j2", status=409, message=exc.message, here="/")


def _unchecked(text: str) -> dict[str, Any] | None:
    """The check's answer for a text that is not even there."""
    if text.strip():
        return None
    return {"valid": False, "problems": [{"field": "definition", "line": None,
                                          "message": "the strategy's text is empty"}], "audience": None, "scripts": []}


def register(app: Any, web: Callable[[], Any]) -> None:
    """The editor's routes."""
    from fastapi import Path, Query, Request
    from fastapi.responses import RedirectResponse
    from starlette.concurrency import run_in_threadpool

    def acting(request: Any, api: bool, work: Callable[[Any, Context, Visit], Any], seen: Visit | None = None) -> Any:
        w = web()
        seen = seen or visit(w, request)
        if seen.principal is None:
            return unsigned(w, seen, api)
        ctx = w.ctx.acting_as(seen.principal)
        try:
            return work(w, ctx, seen)
        except VersionError as exc:   # a transition the version's state does not allow: a conflict, said plainly
            return conflict(w, seen, exc, api)
        except LifeloopError as exc:
            return refusal(w, seen, exc, api)
        finally:
            ctx.close()

    async def posted(request: Any, api: bool, work: Callable[[Any, Context, Visit, dict[str, str]], Any]) -> Any:
        w = web()
        form = await form_of(request)
        seen = await run_in_threadpool(visit, w, request)
        if seen.principal is None:
            return unsigned(w, seen, api)
        if not csrf_passes(w, seen, request, form):
            return forbidden_csrf(w, seen, api)
        return await run_in_threadpool(acting, request, api, lambda w, ctx, s: work(w, ctx, s, form), seen)

    strategy_path = Path(pattern=STRATEGY_ID, max_length=64)

    # ------------------------------------------------------------------ the map
    @app.get("/api/strategies", tags=["strategies"], summary="The live strategy map: versions, pending, coverage",
             responses=answers(401, 403))
    def api_map(request: Request):
        return acting(request, True, lambda w, ctx, seen: as_json(ctx.strategy_map()))

    @app.get("/strategies", include_in_schema=False)
    def map_page(request: Request):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            doc = ctx.strategy_map()
            heat = {(c["segment"], c["stage"]): c for c in (doc["coverage"] or {}).get("cells", [])}
            return html(w, seen, "strategies.html.j2", doc=doc, heat=heat)
        return acting(request, False, work)

    # ------------------------------------------------------------------ one strategy's versions
    @app.get("/api/strategies/{strategy}", tags=["strategies"],
             summary="A strategy's versions (0: config/strategies.yaml), the live one per branch, the pending",
             responses=answers(401, 403, 404, 422))
    def api_versions(request: Request, strategy: str = strategy_path):
        return acting(request, True, lambda w, ctx, seen: as_json(ctx.strategy_versions(strategy)))

    @app.get("/api/strategies/{strategy}/diff", tags=["strategies"],
             summary="The unified diff of two versions' YAML text", responses=answers(401, 403, 404, 422))
    def api_diff(request: Request, strategy: str = strategy_path,
                 before: int = Query(0, ge=0, le=VERSION_MAX), after: int = Query(0, ge=0, le=VERSION_MAX)):
        return acting(request, True, lambda w, ctx, seen: as_json(
            {"strategy_id": strategy, "before": before, "after": after,
             "diff": ctx.strategy_diff(strategy, before, after)}))

    @app.get("/strategies/{strategy}", include_in_schema=False)
    def versions_page(request: Request, strategy: str, before: str = "", after: str = "", done: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            info = ctx.strategy_versions(strategy)
            numbers = [v["version"] for v in info["versions"]]
            a = int(before) if before.isdigit() and int(before) in numbers else (numbers[-2] if len(numbers) > 1
                                                                                  else numbers[0])
            b = int(after) if after.isdigit() and int(after) in numbers else numbers[-1]
            p = seen.principal
            return html(w, seen, "strategy_versions.html.j2", info=info, before=a, after=b, done=done,
                        diff=ctx.strategy_diff(strategy, a, b).splitlines(),
                        me=p.user_id, can_edit=p.can("strategies.edit"), can_approve=p.can("strategies.approve"))
        return acting(request, False, work)

    # ------------------------------------------------------------------ the draft form
    @app.get("/strategies/{strategy}/edit", include_in_schema=False)
    def edit_page(request: Request, strategy: str, branch: str = "", version: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            ctx.require("strategies.edit", "draft strategy versions")
            own = sorted(seen.principal.scope("strategies.edit").branch_ids)
            chosen = branch or (own[0] if own and not seen.principal.scope("strategies.edit").all else "")
            mine = _version(version)
            if mine is not None:
                rows = {r["version"]: r for r in ctx.strategy_versions(strategy)["versions"]}
                row = rows.get(mine)
                if row is None or row["status"] != "draft" or row.get("author") != seen.principal.user_id:
                    raise not_visible("draft", f"{strategy} v{mine}")   # not yours looks like not there
                text, base = row["definition"], mine
                chosen = row.get("branch_id") or ""
            else:
                text, base = editing.live_version_text(ctx, strategy, chosen or None)
            check = ctx.strategy_preview(strategy, text, branch=chosen or None)
            return html(w, seen, "strategy_edit.html.j2", strategy=strategy, text=text, base=base,
                        branch=chosen, branches=own, editing=mine, check=check, fields=_fields(text))
        return acting(request, False, work)

    def preview_work(strategy: str, api: bool):
        def work(w: Any, ctx: Context, seen: Visit, form: dict[str, str]) -> Any:
            ctx.require("strategies.edit", "draft strategy versions")
            text = editing.with_fields(form.get("definition", ""), form)
            check = _unchecked(text) or ctx.strategy_preview(strategy, text, branch=form.get("branch") or None)
            if api:
                return as_json(check)
            return html(w, seen, "_strategy_check.html.j2", check=check)
        return work

    @app.post("/api/strategies/{strategy}/preview", tags=["strategies"],
              summary="Check a draft as it is typed: problems by field, the audience count, the scripts rendered",
              responses=answers(401, 403, 404, 422),
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": draft_body()}}}})
    async def api_preview(request: Request, strategy: str = strategy_path):
        return await posted(request, True, preview_work(strategy, True))

    @app.post("/strategies/{strategy}/preview", include_in_schema=False)
    async def preview_fragment(request: Request, strategy: str):
        return await posted(request, False, preview_work(strategy, False))

    def draft_work(strategy: str, api: bool):
        def work(w: Any, ctx: Context, seen: Visit, form: dict[str, str]) -> Any:
            ctx.require("strategies.edit", "draft strategy versions")
            text = editing.with_fields(form.get("definition", ""), form)
            if api:   # a text that does not check out is answered with its problems, nothing saved
                check = _unchecked(text)
                if check is not None:
                    return as_json({"saved": False, **check})
                try:
                    row = ctx.strategy_draft(strategy, text, branch=form.get("branch") or None,
                                             note=form.get("note") or None, version=_version(form.get("version")))
                except ConfigError as exc:
                    return as_json({"saved": False, "valid": False, "problems": editing.problems_of(exc)})
                return as_json({"saved": True, **row})
            if not text.strip():
                raise ConfigError("the strategy's text is empty", hint="write the strategy's fields in YAML")
            try:
                row = ctx.strategy_draft(strategy, text, branch=form.get("branch") or None,
                                         note=form.get("note") or None, version=_version(form.get("version")))
            except ConfigError as exc:   # the form again, with the problems by field
                check = {"valid": False, "problems": editing.problems_of(exc), "audience": None, "scripts": []}
                return html(w, seen, "strategy_edit.html.j2", status=422, strategy=strategy, text=text,
                            base=None, branch=form.get("branch") or "",
                            branches=sorted(seen.principal.scope("strategies.edit").branch_ids),
                            editing=_version(form.get("version")), check=check, fields=_fields(text))
            return RedirectResponse(f"/strategies/{strategy}?done=draft&after={row['version']}", status_code=303)
        return work

    @app.post("/api/strategies/{strategy}/drafts", tags=["strategies"],
              summary="Save a draft version, validated like every rule (audited): saved true with the version, or "
                      "saved false with the problems by field",
              responses=answers(401, 403, 404, 409, 422),
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": draft_body()}}}})
    async def api_draft(request: Request, strategy: str = strategy_path):
        return await posted(request, True, draft_work(strategy, True))

    @app.post("/strategies/{strategy}/drafts", include_in_schema=False)
    async def draft_form(request: Request, strategy: str):
        return await posted(request, False, draft_work(strategy, False))

    # ------------------------------------------------------------------ transitions
    def act(strategy: str, version: int, action: str, api: bool):
        def work(w: Any, ctx: Context, seen: Visit, form: dict[str, str]) -> Any:
            comment = (form.get("comment") or "").strip() or None
            if action == "submit":
                row = ctx.strategy_submit(strategy, version)
            elif action in ("approve", "reject"):
                row = ctx.strategy_decide(strategy, version, approve=action == "approve", comment=comment)
            else:
                row = ctx.strategy_revert(strategy, version, note=comment)
            if api:
                return as_json(row)
            return RedirectResponse(f"/strategies/{strategy}?done={action}&after={row['version']}", status_code=303)
        return work

    @app.post("/api/strategies/{strategy}/versions/{version}/{action}", tags=["strategies"],
              summary="submit (the maker), approve or reject (a checker who is not the author), revert (a new version "
                      "with this one's text, submitted for approval); 409: not possible in the version's state",
              responses=answers(401, 403, 404, 409, 422),
              openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                  "schema": decision_body()}}}})
    async def api_act(request: Request, strategy: str = strategy_path,
                      version: int = Path(ge=0, le=VERSION_MAX),
                      action: Literal["submit", "approve", "reject", "revert"] = Path()):
        return await posted(request, True, act(strategy, version, action, True))

    @app.post("/strategies/{strategy}/versions/{version}/{action}", include_in_schema=False)
    async def act_form(request: Request, strategy: str, version: int = Path(ge=0, le=VERSION_MAX),
                       action: Literal["submit", "approve", "reject", "revert"] = Path()):
        return await posted(request, False, act(strategy, version, action, False))


def _fields(text: str) -> dict[str, Any]:
    """The structured fields' values as the text has them."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    data = data if isinstance(data, dict) else {}
    objective = data.get("objective") if isinstance(data.get("objective"), dict) else {}
    return {"audience": data.get("audience", ""), "holdout": data.get("holdout", ""),
            "priority": data.get("priority", ""), "objective_kind": objective.get("kind", "")}
