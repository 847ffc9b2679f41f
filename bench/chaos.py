"""Fault injection: dispatchers killed at random against a gateway that does NOT de-duplicate.

    .venv/bin/python bench/chaos.py                                   # 1,000 contacts, 20 crashes, SQLite
    .venv/bin/python bench/chaos.py --contacts 2000 --crashes 40 --database postgresql+psycopg://...
    .venv/bin/python bench/chaos.py --no-status-lookup                # unknown outcomes wait for an operator

A gateway on 127.0.0.1 (a thread of this process) logs every request it accepts — its own log is the
truth — and injects faults: timeouts (it records the delivery, then answers after the client gave up),
500s, 429s with Retry-After, 504s from "a proxy" that never forwarded, connections dropped before and
after accepting. It answers a status look-up (GET /status/KEY: 200 delivered, 404 not there).

Dispatchers are subprocesses running ``drain`` (``--drain`` mode of this file) on the real outbox; each
crash round starts one or two of them (two at once every third round), waits until they are draining, and
kills each with SIGKILL at a random moment, one after the other (every fifth round interrupts the first
with SIGINT, as Ctrl-C does). The moment is drawn by progress, not by the clock: after 2-20 more requests
reach the gateway (``KILL_AFTER``), plus a fraction of a request, so a fast machine cannot empty the outbox
before the crashes asked for have happened.
Then healthy drains in this process settle everything. The counts come from the gateway's log: keys
delivered twice, contacts lost (recorded sent but not delivered, or delivered but recorded not sent),
and every contact's final status (sent, failed with a reason, or unknown with a reason).

The tests (tests/integration/test_dispatch_chaos.py) run a smaller version of the same harness.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import http.server
import json
import os
import random
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import sqlalchemy as sa  # noqa: E402

from lifeloop.execution.channels.webhook import WebhookChannel  # noqa: E402
from lifeloop.execution.dispatch import drain  # noqa: E402
from lifeloop.store.ops import contacts  # noqa: E402
from lifeloop.store.ops.contacts import NewContact  # noqa: E402
from lifeloop.store.ops.database import session_factory, unit_of_work  # noqa: E402
from lifeloop.store.ops.migrations import upgrade  # noqa: E402
from lifeloop.store.ops.models import Dispatch  # noqa: E402

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
ROUND = dt.timedelta(hours=7)       # each round's clock: later than every backoff of the round before
CLIENT_TIMEOUT = 0.15               # seconds; the gateway's slow answers take longer
KILL_AFTER = (2, 20)                # a dispatcher is stopped after this many more requests (drawn per kill)
LATENCY = 0.03                      # seconds per answer while dispatchers are being killed: work is left for each
FAULTS = (("timeout", 0.05), ("500", 0.05), ("429", 0.05), ("504", 0.02), ("drop_before", 0.03),
          ("drop_after", 0.03))


# ---------------------------------------------------------------------------------------------- the gateway
class Gateway:
    """A provider that does not de-duplicate: every accepted request is a delivery, logged in order."""

    def __init__(self, log: Path, *, seed: int = 7, faults: tuple[tuple[str, float], ...] = FAULTS,
                 hold: float = 0.0):
        self.log_path, self.rng, self.faults, self.hold = log, random.Random(seed), faults, hold
        self.lock = threading.Lock()
        self.delivered: list[str] = []
        self.injected: collections.Counter[str] = collections.Counter()
        self.posts = 0   # requests received (any answer): how far the dispatchers of a round have got
        self._log = open(log, "a", encoding="ascii")   # noqa: SIM115 - closed in stop()
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:   # the status look-up
                key = self.path.rsplit("/", 1)[-1]
                with gateway.lock:
                    known = key in gateway._seen
                self.answer(200 if known else 404, {"id": key[:12]} if known else {"error": "no such message"})

            def do_POST(self) -> None:
                with gateway.lock:
                    gateway.posts += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key") or ""
                try:
                    complete = json.loads(body).get("idempotency_key") == key
                except ValueError:   # the client died mid-request: nothing to deliver
                    complete = False
                if not complete:
                    return self.answer(400, {"error": "incomplete request or mismatched key"})
                fault = gateway.pick()
                if fault == "500":
                    return self.answer(500, {"error": "internal"})
                if fault == "429":
                    return self.answer(429, {"error": "slow down"}, {"Retry-After": "1"})
                if fault == "504":
                    return self.answer(504, {"error": "upstream timeout"})
                if fault == "drop_before":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                gateway.deliver(key)
                if fault == "drop_after":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                if fault == "timeout":
                    time.sleep(CLIENT_TIMEOUT + 0.15)
                elif gateway.hold:
                    time.sleep(gateway.hold)
                return self.answer(200, {"id": key[:12]})

            def answer(self, code: int, data: dict, headers: dict | None = None) -> None:
                raw = json.dumps(data).encode()
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    self.close_connection = True   # the client gave up or was killed

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass   # a client killed mid-request resets the connection: expected here

        self._seen: set[str] = set()
        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/status/{{key}}"

    def pick(self) -> str | None:
        with self.lock:
            r = self.rng.random()
            for name, share in self.faults:
                if r < share:
                    self.injected[name] += 1
                    return name
                r -= share
        return None

    def deliver(self, key: str) -> None:
        with self.lock:   # no de-duplication: a second request with the same key is a second SMS
            self.delivered.append(key)
            self._seen.add(key)
            self._log.write(key + "\n")
            self._log.flush()

    def start(self) -> Gateway:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._log.close()

    def log(self) -> list[str]:
        """Every delivery, from the gateway's own log file."""
        return self.log_path.read_text(encoding="ascii").split()


# ---------------------------------------------------------------------------------------------- a dispatcher
def channel(url: str, status_url: str | None) -> WebhookChannel:
    """The SMS channel as a bank would configure it for this provider: no de-duplication by key."""
    return WebhookChannel("sms", url, timeout=CLIENT_TIMEOUT, retries=2, backoff=0.01, max_inline_wait=0.05,
                          status_url=status_url, reconcile_after=0.5, dedupes_by_key=False)


def baseline(n: int) -> dict[tuple[str, str, str], bool]:
    return {(f"C{i:06d}", "marketing", "sms"): True for i in range(n)}


def drain_main(argv: list[str]) -> int:
    """``--drain URL GATEWAY STATUS_URL|- N ROUND BATCH``: one dispatcher process; prints its summary as JSON."""
    url, gateway, status, n, round_no, batch = argv
    start, at = time.monotonic(), T0 + ROUND * int(round_no)
    factory = session_factory(url)
    ch = channel(gateway, None if status == "-" else status)
    print("ready", flush=True)
    sys.stdin.readline()   # "go": the run starts every dispatcher of a round at once, once all are ready
    try:
        summary = drain(factory, {"sms": ch}, baseline=baseline(int(n)), batch_size=int(batch),
                        clock=lambda: at + dt.timedelta(seconds=time.monotonic() - start))
    except BaseException as exc:  # noqa: BLE001 - Interrupted: report and exit 130, as the CLI does
        print(json.dumps({"interrupted": str(exc)}), flush=True)
        return 130
    print(json.dumps({"lines": summary.lines(), "sent": summary.sent, "unknown": summary.unknown}), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------- the run
@dataclass
class Counts:
    """What the chaos run did and what the gateway's log says about it."""

    contacts: int = 0
    crashes: int = 0            # dispatchers killed with SIGKILL mid-drain
    interrupts: int = 0         # dispatchers interrupted with SIGINT mid-drain
    two_at_once: int = 0        # rounds with two dispatchers draining together
    requests_injected: dict[str, int] = field(default_factory=dict)
    deliveries: int = 0         # lines in the gateway's log
    keys_delivered: int = 0
    delivered_twice: int = 0    # keys in the log more than once: must be 0
    lost: int = 0               # recorded sent but not in the log, or in the log but recorded not sent: must be 0
    unaccounted: int = 0        # not sent / failed / unknown, or without a reason: must be 0
    status: dict[str, int] = field(default_factory=dict)
    unknown_delivered: int = 0  # unknown contacts the gateway did get (an operator would resolve them as sent)
    picked_up_lines: list[str] = field(default_factory=list)
    seconds: float = 0.0


def enqueue(factory, n: int) -> None:
    items = [NewContact(as_of=T0.date(), customer_id=f"C{i:06d}", strategy_id="chaos", wave="w1", channel="sms",
                        max_attempts=12) for i in range(n)]
    with unit_of_work(factory) as s:
        contacts.enqueue(s, contacts=items, now=T0)


def spawn(url: str, gateway: Gateway, lookup: bool, n: int, round_no: int, batch: int) -> subprocess.Popen:
    """A dispatcher subprocess draining the outbox on the round's clock (prints "ready", then its summary)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.Popen([sys.executable, __file__, "--drain", url, gateway.url,
                             gateway.status_url if lookup else "-", str(n), str(round_no), str(batch)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def wait_for_posts(gateway: Gateway, more: int, proc: subprocess.Popen, timeout: float = 2.0) -> None:
    """Until the gateway has had ``more`` requests since now, the dispatcher has ended, or ``timeout`` has passed
    (a dispatcher with nothing due sends nothing)."""
    with gateway.lock:
        target = gateway.posts + more
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with gateway.lock:
            if gateway.posts >= target:
                return
        time.sleep(0.005)


def go(procs: list[subprocess.Popen]) -> None:
    """Let ready dispatchers start draining, together: without it the first of a pair drained while the second
    was still starting (seconds on a busy machine), so the kills came late and the outbox could empty before
    the crashes asked for had been injected."""
    for p in procs:
        if p.poll() is None and p.stdin is not None:
            try:
                p.stdin.write("go\n")
                p.stdin.flush()
            except OSError:   # it died on its own: its outcome says so
                pass


def wait_ready(proc: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "ready":
            return True
        if not line and proc.poll() is not None:
            return False
    return False


def _outcome(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=120)
    lines = [x for x in out.splitlines() if x.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def _busy(factory) -> int:
    with factory() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(Dispatch)
                        .where(Dispatch.status.in_(("pending", "claimed", "sending")))) or 0


def run(url: str, *, n: int = 1000, crashes: int = 20, lookup: bool = True, seed: int = 7, batch: int = 25,
        workdir: Path | None = None, max_rounds: int | None = None) -> Counts:
    """Enqueue ``n`` contacts, kill dispatchers ``crashes`` times mid-drain, settle, count from the gateway's log."""
    started = time.monotonic()
    rng = random.Random(seed)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="lifeloop-chaos-"))
    upgrade(url)
    factory = session_factory(url)
    enqueue(factory, n)
    gateway = Gateway(workdir / "gateway.log", seed=seed, hold=LATENCY).start()
    counts = Counts(contacts=n)
    round_no = 0
    try:
        stopped = 0
        limit = max_rounds or crashes * 4
        while stopped < crashes and round_no < limit and _busy(factory):
            round_no += 1
            pair = round_no % 3 == 0
            procs = [spawn(url, gateway, lookup, n, round_no, batch) for _ in range(2 if pair else 1)]
            ready = [wait_ready(p) for p in procs]
            go(procs)
            order = rng.sample(range(len(procs)), len(procs))   # with two, both are stopped, one after the other
            for i, victim in enumerate(order):
                # stopped after a few of its requests, wherever it is in the next one: by progress, not by the clock,
                # so a fast machine does not empty the outbox before the crashes asked for (it did: 12 of 20)
                wait_for_posts(gateway, rng.randint(KILL_AFTER[0], KILL_AFTER[1]), procs[victim])
                time.sleep(rng.uniform(0.0, LATENCY))
                interrupt = round_no % 5 == 0 and i == 0
                if stopped < crashes and ready[victim] and procs[victim].poll() is None:
                    procs[victim].send_signal(signal.SIGINT if interrupt else signal.SIGKILL)
                    stopped += 1
                    counts.interrupts += interrupt
                    counts.crashes += not interrupt
                    counts.two_at_once += pair and i == 0
                elif procs[victim].poll() is None:
                    procs[victim].send_signal(signal.SIGINT)   # out of crashes to inject: stop it gently
            for p in procs:
                result = _outcome(p)
                counts.picked_up_lines.extend(x for x in result.get("lines", []) if "stopped dispatcher" in x
                                              or "picked up" in x)
                if os.environ.get("CHAOS_DEBUG"):
                    print(round_no, result, file=sys.stderr)
        # then healthy dispatchers settle what is left (in this process: no start-up cost)
        gateway.hold = 0.0
        ch = channel(gateway.url, gateway.status_url if lookup else None)
        try:
            for _ in range(20):
                round_no += 1
                at = T0 + ROUND * round_no
                summary = drain(factory, {"sms": ch}, baseline=baseline(n), batch_size=batch, clock=lambda at=at: at)
                counts.picked_up_lines.extend(x for x in summary.picked_up if "picked up" in x)
                if not _busy(factory) and (not lookup or not _unknown(factory)):
                    break
        finally:
            ch.close()
    finally:
        gateway.stop()
    count(counts, factory, gateway)
    counts.seconds = round(time.monotonic() - started, 1)
    factory.kw["bind"].dispose()
    return counts


def _unknown(factory) -> int:
    with factory() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(Dispatch).where(Dispatch.status == "unknown")) or 0


def count(counts: Counts, factory, gateway: Gateway) -> None:
    """Compare the outbox with the gateway's own log."""
    log = collections.Counter(gateway.log())
    counts.requests_injected = dict(gateway.injected)
    counts.deliveries = sum(log.values())
    counts.keys_delivered = len(log)
    counts.delivered_twice = sum(1 for v in log.values() if v > 1)
    with factory() as s:
        rows = s.execute(sa.select(Dispatch.idempotency_key, Dispatch.status, Dispatch.last_error,
                                   Dispatch.unknown_reason)).all()
    counts.status = dict(collections.Counter(r.status for r in rows))
    for key, status, error, reason in rows:
        delivered = log.get(key, 0) > 0
        if status == "sent":
            counts.lost += not delivered
        elif status == "failed":
            counts.lost += delivered
            counts.unaccounted += not error
        elif status == "unknown":
            counts.unknown_delivered += delivered
            counts.unaccounted += not reason
        else:
            counts.unaccounted += 1


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--drain":
        return drain_main(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--crashes", type=int, default=20)
    parser.add_argument("--database", default=None, help="an ops database URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--no-status-lookup", action="store_true", help="unknown outcomes wait for an operator")
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lifeloop-chaos-"))
    url = args.database or f"sqlite:///{workdir / 'ops.db'}"
    counts = run(url, n=args.contacts, crashes=args.crashes, lookup=not args.no_status_lookup, seed=args.seed,
                 batch=args.batch_size, workdir=workdir)
    report = asdict(counts)
    report["picked_up_lines"] = counts.picked_up_lines[:5] + (["..."] if len(counts.picked_up_lines) > 5 else [])
    print(json.dumps(report, indent=2, ensure_ascii=False))
    ok = counts.delivered_twice == 0 and counts.lost == 0 and counts.unaccounted == 0
    print("OK: no key delivered twice, none lost, every contact accounted for" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
