"""The HTTP API (``lifeloop serve``): one FastAPI app made by :func:`create_app` over the ``Context`` facade.

It takes events (``POST /events``, docs/realtime.md) and decides them in the background within seconds, and
serves the web app (sign-in, the strategy board, the RM workbench and their JSON API: :mod:`lifeloop.web`,
docs/web.md). Every request goes through a ``Context`` made by ``ctx_factory`` when the app starts (the web
pages through one acting as the signed-in user). FastAPI is imported only when an app is made.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (Request, imported lazily)
import gc
import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from lifeloop.context import Context
from lifeloop.errors import EventError, LifeloopError
from lifeloop.realtime.access import RateLimits, authenticate, retry_after
from lifeloop.realtime.intake import decode_body
from lifeloop.web import mount as mount_web
from lifeloop.web.schemas import Receipt, answers

DECIDE_EVERY = 0.05   # seconds the background decider sleeps when it found nothing to decide
DRAIN_EVERY = 1.0     # seconds between drains of the outbox when no new contact woke the drainer


class BackgroundDecider:
    """Two threads: one decides stored events as they come (woken by each accepted batch, else every 50 ms), the
    other drains the outbox through the contact gate (woken by each pass that enqueued, else every second) —
    so a slow channel never delays the next decision."""

    def __init__(self, ctx: Context, interval: float = DECIDE_EVERY, drain_every: float = DRAIN_EVERY):
        self.ctx = ctx
        self.interval = interval
        self.drain_every = drain_every
        self.wake = threading.Event()
        self.wake_drain = threading.Event()
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._decide, name="lifeloop-decider", daemon=True),
                        threading.Thread(target=self._drain, name="lifeloop-drainer", daemon=True)]
        self.decider: Any = None
        self.drainer: Any = None

    def start(self) -> None:
        """Open both deciders and read the bank's state before the server answers, so the first events do not
        wait seconds for it (20,000 customers: about 1.5 s on a loaded machine)."""
        self.decider = self.ctx.decider(drain=False)
        self.drainer = self.ctx.decider()
        today = self.decider.clock().astimezone(ZoneInfo(self.ctx.config.bank.timezone)).date()
        for d in (self.decider, self.drainer):
            d.bank(today)
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.wake_drain.set()
        for t in self.threads:
            t.join(timeout=30)

    def _failed(self, exc: Exception) -> None:
        self.errors = [*self.errors[-9:], f"{type(exc).__name__}: {exc}"]

    def _decide(self) -> None:
        decider = self.decider
        try:
            while not self.stopping.is_set():
                try:
                    done = decider.run_once()
                except Exception as exc:  # noqa: BLE001 - kept and shown on /health; events stay undecided
                    self._failed(exc)
                    done = None
                if done is not None and done.enqueued:
                    self.wake_drain.set()
                if done is None or done.events == 0:
                    self.wake.wait(self.interval)
                    self.wake.clear()
        finally:
            decider.close()

    def _drain(self) -> None:
        drainer = self.drainer
        try:
            while not self.stopping.is_set():
                self.wake_drain.wait(self.drain_every)
                self.wake_drain.clear()
                try:
                    drainer.drain()
                except Exception as exc:  # noqa: BLE001 - kept and shown on /health; contacts stay in the outbox
                    self._failed(exc)
        finally:
            drainer.close()


def create_app(ctx_factory: Callable[[], Context], *, decide: bool = True, review: Any = None,
               serving: bool = False) -> Any:
    """The FastAPI app: ``POST /events`` (authenticated, rate-limited, idempotent), ``GET /health`` and the web
    app (``review``: where the board's document comes from, default ``Context.evaluate``; tests give a fixture).
    ``serving``: the app is the process's server (``lifeloop serve``, bench/web.py), which keeps what lives at
    its start out of the garbage collector's scans (a full collection at start and stop: ~0.5 s, too much for
    the tests' hundreds of apps)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Any):
        ctx = ctx_factory()
        ctx.ops()   # fail at start, not on the first request, when the database cannot be used
        config = ctx.events_config()
        state.update(ctx=ctx, sources=config.sources, limits=RateLimits(config.sources))
        if decide:
            state["decider"] = BackgroundDecider(ctx)
            state["decider"].start()
        if serving:
            # what is alive now (the modules, the app, its routes: ~200,000 objects) stays for the server's life:
            # the cyclic collector leaves it out of its scans, which otherwise cost 200-250 ms each in the middle
            # of a request every few pages (a 500-row worklist's p95, docs/performance.md). Collected first, so no
            # garbage is kept; unfrozen and collected at stop, so what the app leaves is freed with it.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if decide:
                state["decider"].stop()
            ctx.close()
            if serving:
                gc.unfreeze()
                gc.collect()

    # no /docs or /redoc: those pages load their scripts from a CDN; /openapi.json describes the API
    app = FastAPI(title="Lifeloop", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        decider = state.get("decider")
        return {"status": "ok", "decider_errors": decider.errors if decider else []}

    @app.post("/events", response_model=Receipt, responses=answers(401, 422, 429, 503))
    async def post_events(request: Request):
        source = authenticate(request.headers.get("authorization"), state["sources"])
        if source is None:
            return JSONResponse({"error": "a service token is needed (Authorization: Bearer <token>)",
                                 "hint": "each event source has a token whose SHA-256 is in config/events.yaml"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        wait = state["limits"].take(source.name)
        if wait > 0:
            return JSONResponse({"error": f"source {source.name} is over its rate limit "
                                          f"({source.rate_per_second:g} requests/s)", "retry_after_seconds": wait},
                                status_code=429, headers={"Retry-After": retry_after(wait)})
        body = await request.body()
        try:
            receipt = await run_in_threadpool(lambda: state["ctx"].accept_events(decode_body(body),
                                                                                 source=source.name,
                                                                                 where="request"))
        except EventError as exc:
            return JSONResponse(error_body(exc), status_code=422)
        except LifeloopError as exc:
            return JSONResponse(error_body(exc), status_code=503)
        if "decider" in state and receipt.accepted:
            state["decider"].wake.set()
        return receipt.as_dict()

    mount_web(app, state, review)
    return app


def error_body(exc: LifeloopError) -> dict[str, Any]:
    """A Lifeloop error as JSON: the message, each located problem (row, field) and the hint."""
    return {"error": exc.message, "hint": exc.hint, "total": exc.total,
            "problems": [{"row": p.row, "field": p.field, "message": p.message} for p in exc.problems]}
