"""Fault injection against a gateway that does NOT de-duplicate: dispatchers killed with SIGKILL at random
points, interrupted with SIGINT, two at once; timeouts, 5xx, 429s, dropped connections. Counted from the
gateway's own log: no key delivered twice, none lost, every contact sent, failed with a reason, or unknown
with a reason. The harness is bench/chaos.py (its full-size run: 1,000 contacts, 20 crashes).
Runs on SQLite and PostgreSQL (the 1,000-contact run on PostgreSQL only: see there).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import signal
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from lifeloop.errors import Interrupted
from lifeloop.execution.dispatch import drain
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Dispatch
from lifeloop.store.ops.owners import Owner
from tests.ops_fixtures import database_url, ops_db, postgres_server  # noqa: F401 - fixtures

_spec = importlib.util.spec_from_file_location("bench_chaos",
                                               Path(__file__).resolve().parents[2] / "bench" / "chaos.py")
chaos = sys.modules.setdefault("bench_chaos", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(chaos)


def assert_every_contact_accounted_for(counts, n: int) -> None:
    assert counts.delivered_twice == 0, counts
    assert counts.lost == 0, counts
    assert counts.unaccounted == 0, counts
    assert sum(counts.status.values()) == n
    assert set(counts.status) <= {"sent", "failed", "unknown"}


def test_dispatchers_killed_at_random_with_a_status_look_up_deliver_every_contact_exactly_once(database_url, tmp_path):
    n = 100
    counts = chaos.run(database_url, n=n, crashes=4, lookup=True, seed=3, workdir=tmp_path)
    assert counts.crashes + counts.interrupts == 4 and counts.two_at_once >= 1
    assert sum(counts.requests_injected.values()) > 10   # the faults really happened
    assert_every_contact_accounted_for(counts, n)
    # with the provider's status look-up every unknown outcome was settled: all delivered, each once
    assert counts.status == {"sent": n} and counts.keys_delivered == counts.deliveries == n


def test_without_a_status_look_up_unknown_outcomes_are_held_with_their_reason_never_resent(database_url, tmp_path):
    n = 60
    counts = chaos.run(database_url, n=n, crashes=2, lookup=False, seed=5, workdir=tmp_path)
    assert_every_contact_accounted_for(counts, n)
    assert counts.status.get("unknown", 0) > 0                 # timeouts and drops: held for an operator
    assert counts.deliveries == counts.keys_delivered            # and none of them was sent a second time


# The full-size run on PostgreSQL only, where two dispatchers' claims really race (row locks); SQLite's crash,
# claim and recovery paths are run by the two tests above on both databases, and `bench/chaos.py` runs this
# size on SQLite (its default). One database here saves a minute of the suite (docs/performance.md).
# `make validate` (docs/performance.md "Test suite"): the crash tests above and below stay in `make test`.
@pytest.mark.slow
@pytest.mark.validate
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_thousand_contacts_and_twenty_crashes_deliver_nothing_twice_and_lose_nothing(database_url, tmp_path):
    n = 1000
    # the guarantees are asserted on every run; the 20 crashes are the harness's part: a run whose outbox emptied
    # before 20 dispatchers were stopped (it happened on CI with other tests' processes on the cores) is run again
    # on a fresh database with the next seed, at most twice
    for attempt, seed in enumerate((11, 12, 13)):
        url = database_url if attempt == 0 else postgres_server().create_database()
        (tmp_path / f"run{attempt}").mkdir()
        counts = chaos.run(url, n=n, crashes=20, lookup=True, seed=seed, workdir=tmp_path / f"run{attempt}")
        assert_every_contact_accounted_for(counts, n)
        assert counts.status == {"sent": n}
        if counts.crashes + counts.interrupts == 20:
            break
    assert counts.crashes + counts.interrupts == 20


def test_a_killed_dispatchers_claims_are_picked_up_at_once_and_the_next_dispatch_says_so(ops_db, database_url,
                                                                                          tmp_path):
    n = 30
    chaos.enqueue(ops_db, n)
    gateway = chaos.Gateway(tmp_path / "gateway.log", faults=(), hold=30).start()   # every answer takes 30 s
    try:
        proc = chaos.spawn(database_url, gateway, False, n, 1, 10)
        assert chaos.wait_ready(proc)
        chaos.go([proc])
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        while not gateway.delivered and dt.datetime.now() < deadline:   # the first request is in flight
            threading.Event().wait(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        ch = chaos.channel(gateway.url, None)
        gateway.hold = 0
        summary = drain(ops_db, {"sms": ch}, baseline=chaos.baseline(n), batch_size=10,
                        clock=lambda: chaos.T0 + chaos.ROUND + dt.timedelta(seconds=5))   # long before the lease ends
        ch.close()
    finally:
        gateway.stop()
    lines = summary.lines()
    assert f"picked up 9 items left claimed by a dispatcher that died ({Owner.current().host}:{proc.pid})" in lines

    assert any("1 contacts a stopped dispatcher was sending are of unknown outcome" in x for x in lines), lines
    assert any("1 contacts of unknown outcome wait for an operator: `lifeloop outbox unknown`" in x for x in lines)
    with unit_of_work(ops_db) as s:
        statuses = dict(s.execute(sa.select(Dispatch.status, sa.func.count()).group_by(Dispatch.status)).all())
    assert statuses == {"sent": n - 1, "unknown": 1}
    assert len(gateway.log()) == n and len(set(gateway.log())) == n   # the one in flight was delivered, once


class InterruptAfter:
    """An adapter that delivers k messages and then the user presses Ctrl-C while the next is in flight."""

    def __init__(self, inner, k: int, signal_as: BaseException):
        self.inner, self.k, self.done, self.signal_as = inner, k, 0, signal_as
        self.name, self.capabilities = inner.name, inner.capabilities

    def send(self, batch, *, before, after):
        def interrupting_before(m):
            if self.done == self.k:
                assert before(m)          # committed as sending ...
                raise self.signal_as      # ... and Ctrl-C before the answer came
            self.done += 1
            return before(m)

        return self.inner.send(batch, before=interrupting_before, after=after)

    def close(self):
        self.inner.close()


# Python's own Ctrl-C, and the CLI's (its SIGINT handler raises Interrupted)
@pytest.mark.parametrize("signal_as", [KeyboardInterrupt(), Interrupted("interrupted: nothing was published")],
                         ids=["KeyboardInterrupt", "Interrupted"])
def test_an_interrupted_dispatch_gives_back_its_claims_at_once_and_says_so(ops_db, tmp_path, signal_as):
    n = 20
    chaos.enqueue(ops_db, n)
    gateway = chaos.Gateway(tmp_path / "gateway.log", faults=()).start()
    try:
        ch = chaos.channel(gateway.url, None)
        with pytest.raises(Interrupted, match=r"given back at once \(1 of unknown outcome\); sent before that: 4"):
            drain(ops_db, {"sms": InterruptAfter(ch, 4, signal_as)}, baseline=chaos.baseline(n), batch_size=10,
                  clock=lambda: chaos.T0)
        with unit_of_work(ops_db) as s:
            statuses = dict(s.execute(sa.select(Dispatch.status, sa.func.count()).group_by(Dispatch.status)).all())
        # nothing stays claimed: the 5 never tried are pending again now, not in five minutes
        assert statuses == {"sent": 4, "unknown": 1, "pending": n - 5}
        summary = drain(ops_db, {"sms": ch}, baseline=chaos.baseline(n), batch_size=10,
                        clock=lambda: chaos.T0 + dt.timedelta(seconds=1))
        ch.close()
    finally:
        gateway.stop()
    assert summary.sent == n - 5 and summary.picked_up == []
    assert len(gateway.log()) == len(set(gateway.log())) == n - 1
