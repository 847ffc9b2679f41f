"""The web app (issue #15): server-rendered pages and their JSON API on the app ``lifeloop serve`` runs.

:func:`mount` adds to :func:`lifeloop.api.create_app`'s FastAPI app the sign-in (passwords, server-side
sessions, CSRF, idle timeout, lock-out: :mod:`lifeloop.web.auth`), the strategy board and the RM workbench
(:mod:`lifeloop.web.pages`), the static files (htmx 2, vendored; the stylesheet) and security headers. Every
request acts through a :class:`~lifeloop.context.Context` for the signed-in principal
(``Context.acting_as``), so the role x scope checks, masking and auditing are the CLI's. docs/web.md.
FastAPI and Jinja2 are imported only when an app is made.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeloop.context import Context
from lifeloop.data.access import Principal
from lifeloop.web import auth, editor, leads, oidc, operations, pages, reports, threads
from lifeloop.web.security import workspace_secret

LOG = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SECRET_FILE = "keys/web-cookie.secret"   # in the workspace, 0600, made on first start
REVIEW_TTL = 300.0                       # seconds a computed board is reused (evaluate reads the whole lake)

# Content-Security-Policy: nothing but this origin; no inline script; styles from the stylesheet only
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def evaluate(ctx: Context, as_of: dt.date | None, interim: bool = False) -> dict[str, Any]:
    """The board's document: ``lifeloop evaluate`` over the lake (post-evaluation of every strategy); ``interim``:
    windows still running measured to date too (``lifeloop evaluate --interim``), else closed windows only."""
    return ctx.evaluate(as_of=as_of, interim=interim)


@dataclass
class Web:
    """What the web routes share: the app's Context, the cookie secret, where the board comes from."""

    ctx: Context
    secret: bytes
    review: Callable[[Context, dt.date | None, bool], dict[str, Any]] = evaluate
    cache: dict[Any, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sso: list[oidc.Provider | None] = field(default_factory=list)
    indexing: list[threading.Thread] = field(default_factory=list)

    def ensure_index(self) -> threading.Thread | None:
        """Build the customer index for the newest bank batch in the background when it is missing or stale
        (``lake.customer_index: serve``, the default): pages scan meanwhile, and read the index once it is
        published. One build at a time; returns the thread started, if any."""
        with self.lock:
            if any(t.is_alive() for t in self.indexing):
                return None
            self.indexing.clear()
            day = self.ctx.customer_index_missing()
            if day is None:
                return None
            worker = self.ctx.acting_as(Principal.system("customer-index", roles=("analyst",)))

            def build() -> None:
                try:
                    worker.build_customer_index(day)
                except Exception:   # noqa: BLE001 - the pages keep scanning; the next request tries again
                    LOG.exception("building the customer index as of %s failed", day)
                finally:
                    worker.close()
            thread = threading.Thread(target=build, name="customer-index", daemon=True)
            self.indexing.append(thread)
        thread.start()
        return thread

    def provider(self) -> oidc.Provider | None:
        """The bank's identity provider (lifeloop.yaml ``web.oidc``), or None when single sign-on is off."""
        if not self.sso:
            settings = self.ctx.config.web.oidc
            self.sso.append(oidc.Provider(settings) if settings is not None else None)
        return self.sso[0]

    def board(self, ctx: Context, as_of: dt.date | None, branch: str | None = None, interim: bool = False
              ) -> dict[str, Any]:
        """The evaluated board as of a date for the principal of ``ctx`` — over the customers they may see (a
        branch manager: their branch), or one branch of those (``branch``) — computed at most every REVIEW_TTL
        seconds per scope; closed windows only, or with ``interim`` the windows still running measured to date."""
        principal = ctx.require("board.read", "read the strategy board")
        narrowed = ctx.within_branch(branch)   # refuses a branch the reader may not choose
        try:
            return self._cached(("board", as_of, principal.scope("lists.read"), branch or None, interim),
                                lambda: self.review(narrowed, as_of, interim))
        finally:
            if narrowed is not ctx:
                narrowed.close()

    def kpis(self, ctx: Context, start: dt.date, end: dt.date) -> dict[str, Any]:
        """The lifecycle KPIs of a period for the whole bank (``Context.board_kpis``), cached like the board;
        callers narrow them to the reader (:func:`lifeloop.web.board.scoped_kpis`)."""
        ctx.require("board.read", "read the strategy board")
        return self._cached(("kpis", start, end), lambda: ctx.board_kpis(start, end))

    def _cached(self, key: Any, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self.lock:
            hit = self.cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < REVIEW_TTL:
                return hit[1]
        doc = compute()
        with self.lock:
            self.cache[key] = (time.monotonic(), doc)
        return doc


def mount(app: Any, state: dict[str, Any],
          review: Callable[[Context, dt.date | None, bool], dict[str, Any]] | None = None) -> None:
    """Add the web pages, their API, the static files and the security headers to ``app``; ``state["ctx"]`` is the
    app's Context once it has started (``state["web"]`` is made then). ``review``: the board's source (tests)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.staticfiles import StaticFiles

    def web() -> Web:
        if "web" not in state:
            ctx = state["ctx"]
            state["web"] = Web(ctx, workspace_secret(ctx.workspace / SECRET_FILE), review or evaluate)
        return state["web"]

    @app.middleware("http")
    async def security_headers(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Any, exc: Any) -> Any:
        """A parameter that is not what the description says (a date that is not one): 422 with the app's body."""
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        given = str(first.get("input", ""))[:20]
        if "date" in str(first.get("type", "")):
            message, hint = f"{where} {given!r} is not a date", "write it as YYYY-MM-DD"
        else:
            message, hint = f"{where or 'the request'}: {first.get('msg', 'not valid')}", "see /openapi.json"
        return JSONResponse({"error": message, "hint": hint}, status_code=422)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    auth.register(app, web)
    pages.register(app, web)
    operations.register(app, web)
    threads.register(app, web)
    leads.register(app, web)
    editor.register(app, web)
    reports.register(app, web)
