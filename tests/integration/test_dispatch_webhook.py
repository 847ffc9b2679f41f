"""Dispatch through the webhook adapter to a flaky local gateway: every contact delivered exactly once.

The gateway (a tiny http.server in a subprocess on 127.0.0.1, a free port) fails at random: timeouts
after accepting (the answer is lost), 500s, 429s with Retry-After, connections dropped before and after
accepting. It dedupes by idempotency key like a real provider, keeps the keys it accepted in a file (so
its memory survives a restart), and is killed and restarted mid-batch. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from lifeloop.execution.channels.webhook import WebhookChannel
from lifeloop.execution.dispatch import drain, enqueue_lists
from lifeloop.store.ops import contacts as outbox
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Dispatch
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

D = dt.date(2026, 3, 2)
# the clock the drains run on: after the real time at which the tests enqueue (items are due from then)
# the drain's clock; the outbox stamps items with the real time when they are enqueued, so T0 must lie
# after every enqueue of the run: the module is imported when the suite is collected, minutes before
# these tests run in a full `make test`
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=6)

GATEWAY = r'''
import http.server, json, os, random, socketserver, sys, threading, time
port, state, seed, flaky = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
rng = random.Random(seed)
lock = threading.Lock()
accepted = set()
if os.path.exists(state):
    accepted = set(open(state).read().split())
log = open(state, "a")
posts = open(state + ".posts", "a")

def accept(key):
    with lock:
        if key in accepted:
            return False
        accepted.add(key)
        log.write(key + "\n"); log.flush(); os.fsync(log.fileno())
        return True

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Idempotency-Key")
        if not key or json.loads(body)["idempotency_key"] != key:
            return self.answer(400, {"error": "missing or mismatched idempotency key"})
        with lock:
            r = rng.random() if flaky else 1.0
            posts.write(key + "\n"); posts.flush()
        if r < 0.04:                      # accepted, then too slow: the client times out, the answer is lost
            accept(key); time.sleep(0.6); return self.answer(200, {"id": key[:12]})
        if r < 0.12:
            return self.answer(500, {"error": "internal"})
        if r < 0.20:
            return self.answer(429, {"error": "slow down"}, {"Retry-After": "2"})
        if r < 0.24:                      # dropped before accepting
            self.close_connection = True; self.connection.shutdown(2); return
        if r < 0.28:                      # accepted, then dropped: the client never hears
            accept(key); self.close_connection = True; self.connection.shutdown(2); return
        accept(key)
        self.answer(200, {"id": key[:12]})
    def answer(self, code, data, headers={}):
        raw = json.dumps(data).encode()
        self.send_response(code)
        for k, v in headers.items(): self.send_header(k, v)
        self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(raw)))
        self.end_headers(); self.wfile.write(raw)

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", port), H).serve_forever()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """The flaky gateway subprocess: start, kill (SIGKILL), restart on the same port, read what it accepted."""

    def __init__(self, tmp: Path, *, flaky: bool = True, seed: int = 11):
        self.script = tmp / "gateway.py"
        self.script.write_text(GATEWAY)
        self.state = tmp / "accepted.txt"
        self.port = free_port()
        self.flaky, self.seed, self.proc = flaky, seed, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(self.script), str(self.port), str(self.state),
                                      str(self.seed), "1" if self.flaky else "0"])
        self.seed += 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the test gateway did not start")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)

    def accepted(self) -> list[str]:
        return self.state.read_text().split() if self.state.exists() else []

    def posts(self) -> list[str]:
        path = Path(str(self.state) + ".posts")
        return path.read_text().split() if path.exists() else []


@pytest.fixture
def gateway(tmp_path):
    g = Gateway(tmp_path)
    g.start()
    yield g
    if g.proc and g.proc.poll() is None:
        g.kill()


def day_lists(n: int) -> pa.Table:
    """A day's lists: n treated SMS contacts and a few control rows (recorded, never sent)."""
    rows = [dict(as_of=D, customer_id=f"C{i:06d}", strategy="honeymoon", wave="d1_sms", group="treated",
                 status="contact", channel="sms", send_at=None, purpose="marketing", script_id="honeymoon.sms",
                 script_key=f"honeymoon.sms@{D}#C{i:06d}", offer="WM090", priority=80, rm_id="RM001")
            for i in range(n)]
    rows += [dict(rows[0], customer_id=f"K{i:06d}", group="control", status="control") for i in range(5)]
    return pa.Table.from_pylist(rows)


def everyone_consents(n: int) -> dict:
    return {(f"C{i:06d}", "marketing", "sms"): True for i in range(n)}


def keys_by_status(factory) -> dict[str, set[str]]:
    with unit_of_work(factory) as s:
        rows = s.execute(sa.select(Dispatch.status, Dispatch.idempotency_key)).all()
    out: dict[str, set[str]] = {}
    for status, key in rows:
        out.setdefault(status, set()).add(key)
    return out


def rounds(factory, adapters, n: int, *, start: int = 0, max_rounds: int = 12, **kw):
    """Drain again and again, each round 7 hours later (past any backoff), until nothing is pending."""
    for r in range(start, start + max_rounds):
        at = T0 + dt.timedelta(hours=7 * r)
        drain(factory, adapters, baseline=everyone_consents(n), batch_size=25, clock=lambda at=at: at, **kw)
        with unit_of_work(factory) as s:
            counts = outbox.outbox_counts(s)
        if counts["pending"] == 0 and counts["claimed"] == 0:
            return counts
    return counts


def test_a_flaky_gateway_killed_mid_batch_gets_every_contact_exactly_once_and_the_outbox_accounts_for_all(
        ops_db, gateway):
    n = 120
    lists = day_lists(n)
    summary = enqueue_lists(ops_db, lists, max_attempts=10)
    assert (summary.enqueued, summary.controls) == (n, 5)
    channel = WebhookChannel("sms", gateway.url, timeout=0.25, retries=3, backoff=0.01, max_inline_wait=0.1,
                             dedupes_by_key=True)
    adapters = {"sms": channel}
    failures: list[BaseException] = []

    def first_round():
        try:
            drain(ops_db, adapters, baseline=everyone_consents(n), batch_size=25, clock=lambda: T0)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    worker = threading.Thread(target=first_round)
    worker.start()
    deadline = time.monotonic() + 15
    while len(gateway.accepted()) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    killed_mid_batch = worker.is_alive()
    gateway.kill()                      # mid-batch: requests in flight are lost, later ones are refused
    time.sleep(0.3)
    gateway.start()
    worker.join(30)
    assert killed_mid_batch and not worker.is_alive() and failures == []
    counts = rounds(ops_db, adapters, n, start=1)
    channel.close()

    by_status = keys_by_status(ops_db)
    treated = set(by_status.get("sent", set()) | by_status.get("failed", set()) | by_status.get("pending", set()))
    # the outbox accounts for every contact: sent + failed + pending = enqueued (controls are cancelled, never sent)
    assert counts["sent"] + counts["failed"] + counts["pending"] + counts["claimed"] == n
    assert counts["cancelled"] == 5 and len(treated) == n
    assert counts["failed"] == 0 and counts["pending"] == 0
    accepted = gateway.accepted()
    # exactly once: each key accepted once, and accepted == sent (nothing lost, nothing marked sent unsent)
    assert len(accepted) == len(set(accepted)) == n
    assert set(accepted) == by_status["sent"]
    # the failures really happened: some keys were posted more than once and deduplicated by the gateway
    posts = gateway.posts()
    assert len(posts) > n and set(posts) == set(accepted)
    assert not any(k.startswith("control") for k in posts)


class CrashAfter:
    """An adapter that delivers k messages in all and then dies (the process crashed mid-batch).

    The drain hands a claimed batch over in chunks (the contact gate re-reads consent before each), so
    the k messages may span several ``send`` calls."""

    def __init__(self, inner, k: int):
        self.inner, self.k, self.done = inner, k, 0
        self.name, self.capabilities = inner.name, inner.capabilities

    def send(self, batch, **hooks):
        # the drain hands over chunks (the contact gate keeps state fresh): count across them
        if self.done + len(batch) < self.k:
            self.done += len(batch)
            return self.inner.send(batch, **hooks)
        self.done += len(self.inner.send(batch[: self.k - self.done], **hooks))
        raise RuntimeError(f"worker crashed after {self.done} messages")

    def close(self):
        self.inner.close()


def test_a_worker_crashing_mid_batch_records_what_it_sent_gives_back_the_rest_at_once_and_sends_nothing_twice(
        ops_db, tmp_path):
    g = Gateway(tmp_path, flaky=False)
    g.start()
    try:
        n = 40
        enqueue_lists(ops_db, day_lists(n))
        channel = WebhookChannel("sms", g.url, timeout=2, retries=1, backoff=0.01, dedupes_by_key=True)
        with pytest.raises(RuntimeError, match="crashed after 7"):
            drain(ops_db, {"sms": CrashAfter(channel, 7)}, baseline=everyone_consents(n), batch_size=20,
                  clock=lambda: T0)
        by_status = keys_by_status(ops_db)
        # each of the 7 was recorded as soon as it was delivered; the 13 never tried were given back at once
        assert (len(by_status["sent"]), len(by_status["pending"]), "claimed" in by_status) == (7, n - 7, False)
        # so a re-run a minute later (well inside the 5-minute lease) sends the rest
        drain(ops_db, {"sms": channel}, baseline=everyone_consents(n), batch_size=20,
              clock=lambda: T0 + dt.timedelta(minutes=1))
        channel.close()
        by_status = keys_by_status(ops_db)
        assert len(by_status["sent"]) == n and set(by_status) == {"sent", "cancelled"}
        accepted = g.accepted()
        assert len(accepted) == len(set(accepted)) == n
        assert len(g.posts()) == n      # nothing was posted twice
    finally:
        g.kill()


def test_consent_withdrawn_after_the_plan_blocks_the_contact_at_dispatch_time(ops_db, tmp_path):
    from lifeloop.store.ops import consent

    g = Gateway(tmp_path, flaky=False)
    g.start()
    try:
        enqueue_lists(ops_db, day_lists(3))
        with unit_of_work(ops_db) as s:
            consent.record_change(s, customer_id="C000001", purpose="marketing", channel="*", granted=False,
                                  effective_at=T0 - dt.timedelta(hours=1), source="sms_reply", recorded_by="gateway")
            consent.add_do_not_disturb(s, customer_id="C000002", reason="complaint", created_by="ops",
                                       starts_at=T0 - dt.timedelta(hours=1))
        channel = WebhookChannel("sms", g.url, timeout=2)
        summary = drain(ops_db, {"sms": channel}, baseline=everyone_consents(3), clock=lambda: T0)
        channel.close()
        assert (summary.sent, summary.blocked) == (1, 2)
        with unit_of_work(ops_db) as s:
            blocked = dict(s.execute(sa.select(Dispatch.customer_id, Dispatch.blocked_reason)
                                     .where(Dispatch.status == "blocked")).all())
        assert set(blocked) == {"C000001", "C000002"}
        assert "withdrawn" in blocked["C000001"] and "do-not-disturb" in blocked["C000002"]
        assert len(g.accepted()) == 1
    finally:
        g.kill()
