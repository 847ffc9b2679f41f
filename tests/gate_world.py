"""A small world for the contact gate's tests: the template's contact policy, list rows, a clock you set, and a
recording gateway (a fake channel that records every message it is handed, with the clock's time).

The tests check what the gateway received, not what the plan said.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa

import lifeloop
from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.loader import load_model
from lifeloop.execution.channels.base import Capabilities, Result
from lifeloop.execution.dispatch import enqueue_lists
from lifeloop.strategy.plan import output_schema

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
D = dt.date(2026, 3, 2)   # a Monday
CHANNELS = ("sms", "push", "call", "rm")
POLICY: ContactPolicy = load_model(
    ContactPolicy, Path(lifeloop.__file__).parent / "templates" / "bank" / "config" / "contact_policy.yaml")[0]


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A local time of the bank (Asia/Shanghai) as a UTC instant."""
    return dt.datetime.combine(day, dt.time(hour, minute), ZONE).astimezone(dt.UTC)


def in_local(moment: dt.datetime) -> dt.datetime:
    """An instant in the bank's local time."""
    return moment.astimezone(ZONE)


class Clock:
    """A clock the test sets by hand."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass(frozen=True)
class Delivery:
    """One message as the gateway received it."""

    customer_id: str
    channel: str
    strategy: str
    wave: str
    purpose: str
    as_of: dt.date           # the list it came from
    at: dt.datetime          # the drain's clock when the gateway got it
    mono: float              # time.monotonic() then (for real-time measurements)


@dataclass
class RecordingGateway:
    """A channel for every contact channel that records what it is handed; optionally slow, optionally failing."""

    clock: object
    per_message: float = 0.0
    fail: dict = field(default_factory=dict)         # customer_id -> "final" | "retry"
    delivered: list = field(default_factory=list)
    capabilities: Capabilities = field(default_factory=Capabilities)
    name: str = "recorder"

    def send(self, batch):
        out = []
        for m in batch:
            if self.per_message:
                time.sleep(self.per_message)
            how = self.fail.get(m.customer_id)
            if how is not None:
                out.append(Result.failed(m, "HTTP 400: bad number" if how == "final" else "timeout",
                                         retryable=how == "retry"))
                continue
            self.delivered.append(Delivery(m.customer_id, m.channel, m.strategy_id, m.wave, m.purpose, m.as_of,
                                           self.clock(), time.monotonic()))
            out.append(Result.sent(m))
        return out

    def record_controls(self, messages):
        pass

    def close(self):
        pass

    def adapters(self, channels=CHANNELS) -> dict:
        """The same recorder behind every channel."""
        return dict.fromkeys(channels, self)


def row(customer: str, strategy: str, wave: str, channel: str, *, as_of: dt.date = D, send_at: str | None = "10:00",
        purpose: str = "marketing") -> dict:
    """One treated contact row of the plan's lists."""
    return dict(as_of=as_of, customer_id=customer, strategy=strategy, wave=wave, group="treated", cell=None,
                status="contact", channel=channel, send_at=send_at, purpose=purpose, script_id=None, script_key=None,
                offer=None, priority=50, expected_value=None, cost=None, holdout_draw=0.5, dropped_by=None,
                detail=None, reason="test", rm_id="RM1", suitability=None)


def enqueue(sessions, rows: list[dict], *, now: dt.datetime, policy: ContactPolicy | None = POLICY):
    """Put list rows in the outbox as dispatch does (send times and validity from the policy, bank time zone)."""
    return enqueue_lists(sessions, pa.Table.from_pylist(rows, schema=output_schema()), timezone=TZ, policy=policy,
                         now=now)


def consenting(customers, channels=CHANNELS, purposes=("marketing", "service")) -> dict:
    """The bank's consent extract: every customer consents to everything."""
    return {(c, p, ch): True for c in customers for p in purposes for ch in channels}
