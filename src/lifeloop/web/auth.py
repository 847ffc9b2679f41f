"""Sign-in, sign-out, language, and what every web request shares: who is signed in, the CSRF check, refusals.

A browser signs in with a user name and password (``Context.web_sign_in``: argon2id, lock-out, audited) and
gets a signed, HttpOnly, SameSite=Lax session cookie (Secure unless the app is reached on a loopback address
over plain HTTP). Every POST carries the session's CSRF token (form field ``csrf`` or the ``X-CSRF-Token``
header htmx sends) and is refused with 403 without it. A refusal never says more than the CLI's: an unknown
customer and another book's customer get the same bytes. No ``from __future__ import annotations``: FastAPI
reads the endpoints' annotations, and FastAPI's names are imported inside :func:`register`.
"""

import dataclasses
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from lifeloop.data.access import PERMISSIONS, Principal
from lifeloop.data.masking import AccessError
from lifeloop.errors import LifeloopError, NotFoundError
from lifeloop.web import i18n, oidc, render
from lifeloop.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    LANGUAGE_COOKIE,
    PRE_COOKIE,
    SESSION_COOKIE,
    csrf_ok,
    csrf_token,
    new_pre,
    sign,
    unsign,
)

LOOPBACK = ("127.0.0.1", "localhost", "::1", "testserver")
MAX_FORM = 64 * 1024   # bytes of a form body; the forms here are a few hundred


@dataclasses.dataclass(frozen=True)
class Visit:
    """One request's browser: the signed-in principal and session (or none), the language, the pre-cookie."""

    principal: Principal | None
    session_id: str | None
    lang: str
    pre: str | None
    path: str = "/"

    def csrf(self, secret: bytes) -> str:
        return csrf_token(secret, self.session_id, self.pre)


def visit(web: Any, request: Any) -> Visit:
    """Who is signed in on this request (a live, signed session; the idle timeout is checked), and the language."""
    session_id = unsign(web.secret, request.cookies.get(SESSION_COOKIE))
    principal = web.ctx.web_session(session_id) if session_id else None
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Visit(principal, session_id if principal else None, i18n.language(request.cookies.get(LANGUAGE_COOKIE)),
                 request.cookies.get(PRE_COOKIE), path)


def secure(request: Any) -> bool:
    """Cookies are Secure unless this is plain HTTP on a loopback address (`lifeloop serve`'s default)."""
    return request.url.scheme == "https" or request.url.hostname not in LOOPBACK


def set_cookie(response: Any, request: Any, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure(request),
                        path="/")


async def form_of(request: Any) -> dict[str, str]:
    """A form body (application/x-www-form-urlencoded) or a JSON object, as text fields (first value of each)."""
    body = (await request.body())[:MAX_FORM]
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items() if v is not None} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def csrf_passes(web: Any, seen: Visit, request: Any, form: dict[str, str]) -> bool:
    """Whether a state-changing request carries this browser's CSRF token (header or form field)."""
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    return csrf_ok(web.secret, seen.session_id, None if seen.session_id else seen.pre, sent)


def html(web: Any, seen: Visit, template: str, status: int = 200, **values: Any) -> Any:
    """A page for this visit: language, CSRF token and the signed-in principal filled in."""
    from fastapi.responses import HTMLResponse

    principal = seen.principal
    values.setdefault("here", seen.path)
    text = render.page(seen.lang, template, lang=seen.lang, html_lang=i18n.HTML_LANG[seen.lang],
                       csrf=seen.csrf(web.secret), principal=principal,
                       permissions=sorted(p for p in PERMISSIONS if principal.can(p)) if principal else [], **values)
    return HTMLResponse(text, status_code=status)


def refusal(web: Any, seen: Visit, exc: Exception, api: bool) -> Any:
    """A Lifeloop error as a response: not found (the same bytes whether it does not exist or is not yours), not
    allowed, or the user's mistake with its message."""
    from fastapi.responses import JSONResponse

    _ = i18n.gettext_for(seen.lang)
    hint = None
    if isinstance(exc, NotFoundError):
        status, message = 404, _("Not found among what you may see.")
    elif isinstance(exc, AccessError):
        status, message = 403, _("Your roles do not allow this.")
    elif isinstance(exc, LifeloopError):
        status, message, hint = 422, exc.message, exc.hint   # the user's mistake: what, where, what to do
    else:
        raise exc
    if api:
        return JSONResponse({"error": message, **({"hint": hint} if hint else {})}, status_code=status)
    # nothing of the request is echoed (not even its path), so "not yours" and "not found" are the same bytes
    return html(web, seen, "error.html.j2", status=status, message=message, here="/")


def forbidden_csrf(web: Any, seen: Visit, api: bool) -> Any:
    from fastapi.responses import JSONResponse

    _ = i18n.gettext_for(seen.lang)
    message = _("This form has expired or did not come from this site; reload the page and try again.")
    if api:
        return JSONResponse({"error": message}, status_code=403)
    return html(web, seen, "error.html.j2", status=403, message=message)


def unsigned(web: Any, seen: Visit, api: bool) -> Any:
    """Not signed in: the API answers 401, a page goes to the sign-in page."""
    from fastapi.responses import JSONResponse, RedirectResponse

    if api:
        _ = i18n.gettext_for(seen.lang)
        return JSONResponse({"error": _("Sign in first.")}, status_code=401)
    return RedirectResponse("/sign-in", status_code=303)


def home_of(principal: Principal) -> str:
    """Where a user lands: an RM on their worklist, an approver with nothing else on the strategy map (the versions
    waiting for them), everyone else on the board."""
    if "rm" in principal.roles and not principal.can("board.read"):
        return "/worklist"
    return "/board" if principal.can("board.read") or not principal.can("strategies.read") else "/strategies"


def sso_name(web: Any) -> str | None:
    """The identity provider's name for the sign-in page's button, or None when single sign-on is off."""
    provider = web.provider()
    return provider.name if provider is not None else None


def sso_page(web: Any, seen: Visit) -> Any:
    """The sign-in page after a refused single sign-on: one message whatever the reason (the audit log says which)."""
    seen = dataclasses.replace(seen, pre=seen.pre or new_pre())
    response = html(web, seen, "sign_in.html.j2", status=401, failed=False, sso_failed=True, sso=sso_name(web))
    response.delete_cookie(oidc.PENDING_COOKIE, path=oidc.PENDING_PATH)
    return response


async def sso_refused(web: Any, seen: Visit, request: Any, provider: Any, why: str) -> Any:
    from starlette.concurrency import run_in_threadpool

    client = request.client.host if request.client else None
    await run_in_threadpool(lambda: web.ctx.web_sign_in_refused(why, issuer=provider.settings.issuer, client=client))
    return sso_page(web, seen)


def register(app: Any, web: Callable[[], Any]) -> None:
    """The sign-in page, sign-in, sign-out, the language switch and ``/``."""
    from fastapi import Request
    from fastapi.responses import RedirectResponse
    from starlette.concurrency import run_in_threadpool

    @app.get("/sign-in", include_in_schema=False)
    def sign_in_page(request: Request):
        w = web()
        seen = visit(w, request)
        if seen.principal is not None:
            return RedirectResponse(home_of(seen.principal), status_code=303)
        pre = seen.pre or new_pre()
        response = html(w, dataclasses.replace(seen, pre=pre), "sign_in.html.j2", failed=False, sso=sso_name(w))
        if seen.pre is None:
            set_cookie(response, request, PRE_COOKIE, pre)
        return response

    @app.post("/sign-in", include_in_schema=False)
    async def sign_in(request: Request):
        w = web()
        form = await form_of(request)
        seen = await run_in_threadpool(visit, w, request)
        if not csrf_passes(w, dataclasses.replace(seen, session_id=None), request, form):
            return forbidden_csrf(w, seen, api=False)
        client = request.client.host if request.client else None
        done = await run_in_threadpool(w.ctx.web_sign_in, form.get("user", "").strip(), form.get("password", ""),
                                       client=client)
        if done is None:
            return html(w, seen, "sign_in.html.j2", status=401, failed=True, sso=sso_name(w))
        principal, session_id = done
        response = RedirectResponse(home_of(principal), status_code=303)
        set_cookie(response, request, SESSION_COOKIE, sign(w.secret, session_id))
        return response

    async def single_sign_on(request: Request) -> tuple[Any, Any, Any, Any]:
        """(web, provider, visit, refusal): both halves of single sign-on answer "not found" without a provider."""
        w = web()
        provider = w.provider()
        seen = await run_in_threadpool(visit, w, request)
        missing = (refusal(w, seen, NotFoundError("single sign-on is not configured"), api=False)
                   if provider is None else None)
        return w, provider, seen, missing

    @app.get(oidc.PENDING_PATH, include_in_schema=False)
    async def sign_on(request: Request):
        """Single sign-on, first half: to the bank's identity provider with a state, a nonce and PKCE."""
        w, provider, seen, missing = await single_sign_on(request)
        if missing is not None:
            return missing
        redirect_uri = provider.settings.redirect_uri or str(request.base_url).rstrip("/") + oidc.CALLBACK
        try:
            url, pending = await run_in_threadpool(provider.start, redirect_uri, w.ctx.clock().timestamp())
        except LifeloopError as exc:   # the provider unreachable, the client secret missing
            return await sso_refused(w, seen, request, provider, exc.message)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(oidc.PENDING_COOKIE, oidc.pending_cookie(w.secret, pending), max_age=oidc.PENDING_SECONDS,
                            httponly=True, samesite="lax", secure=secure(request), path=oidc.PENDING_PATH)
        return response

    @app.get(oidc.CALLBACK, include_in_schema=False)
    async def sign_on_callback(request: Request):
        """Single sign-on, second half: the provider's code for an ID token, checked; a session for a known user."""
        w, provider, seen, missing = await single_sign_on(request)
        if missing is not None:
            return missing
        now = w.ctx.clock().timestamp()
        pending = oidc.read_pending(w.secret, request.cookies.get(oidc.PENDING_COOKIE), now)
        params = {k: v[:2048] for k, v in request.query_params.items()}
        try:
            user = await run_in_threadpool(provider.finish, params, pending, now)
        except oidc.SignOnRefused as exc:
            return await sso_refused(w, seen, request, provider, exc.message)
        client = request.client.host if request.client else None
        done = await run_in_threadpool(lambda: w.ctx.web_sign_in_oidc(user, issuer=provider.settings.issuer,
                                                                      client=client))
        if done is None:
            return sso_page(w, seen)
        principal, session_id = done
        response = RedirectResponse(home_of(principal), status_code=303)
        response.delete_cookie(oidc.PENDING_COOKIE, path=oidc.PENDING_PATH)
        set_cookie(response, request, SESSION_COOKIE, sign(w.secret, session_id))
        return response

    @app.post("/sign-out", include_in_schema=False)
    async def sign_out(request: Request):
        w = web()
        form = await form_of(request)
        seen = await run_in_threadpool(visit, w, request)
        if seen.principal is None:
            return unsigned(w, seen, api=False)
        if not csrf_passes(w, seen, request, form):
            return forbidden_csrf(w, seen, api=False)
        await run_in_threadpool(lambda: w.ctx.acting_as(seen.principal).web_sign_out(seen.session_id))
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.post("/language", include_in_schema=False)
    async def choose_language(request: Request):
        w = web()
        form = await form_of(request)
        seen = await run_in_threadpool(visit, w, request)
        if not csrf_passes(w, seen, request, form):
            return forbidden_csrf(w, seen, api=False)
        lang = form.get("lang") if form.get("lang") in i18n.LANGUAGES else i18n.DEFAULT
        back = form.get("next") or "/"
        response = RedirectResponse(back if back.startswith("/") and not back.startswith("//") else "/",
                                    status_code=303)
        set_cookie(response, request, LANGUAGE_COOKIE, lang, max_age=365 * 24 * 3600)
        return response

    @app.get("/", include_in_schema=False)
    def home(request: Request):
        w = web()
        seen = visit(w, request)
        if seen.principal is None:
            return unsigned(w, seen, api=False)
        return RedirectResponse(home_of(seen.principal), status_code=303)
