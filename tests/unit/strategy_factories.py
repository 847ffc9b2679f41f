"""Factories for strategy tests: strategies, policies and candidate tables built in a line."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.strategies import StrategiesConfig, Strategy
from lifeloop.strategy.plan import candidates_schema

D = dt.date(2024, 6, 30)


def strategy(sid: str, *, channels: tuple[str, ...] = ("sms",), priority: int = 50, holdout: float = 0.0,
             waves: list[dict] | None = None, **extra: Any) -> Strategy:
    """A valid strategy with scripts for every channel; override any field."""
    body: dict[str, Any] = dict(
        id=sid, name={"zh": sid, "en": sid}, owner="test",
        objective={"kind": "customers", "metric": "m", "window_days": 30},
        scenario={"kind": "lifecycle"}, audience="true", offer={"code": "X"}, channels=list(channels),
        scripts={ch: {"zh": "您好{{ customer_name }}", "en": "Hello {{ customer_name }}"} for ch in channels},
        waves=waves or [{"id": "w1", "day": 0}], holdout=holdout, priority=priority, start=dt.date(2024, 1, 1))
    body.update(extra)
    return Strategy.model_validate(body)


def config(*strategies: Strategy, **extra: Any) -> StrategiesConfig:
    """A map of the given strategies."""
    return StrategiesConfig(strategies=list(strategies), **extra)


def policy(**fields: Any) -> ContactPolicy:
    """A contact policy; everything missing is permissive (marketing consent still needs a row)."""
    return ContactPolicy.model_validate(fields)


def candidate(customer: str, s: Strategy, *, wave: str = "w1", rm_id: str | None = "RM1", control: bool = False,
              tie: float = 0.5, send_at: str | None = None, values: list[float] | None = None,
              purpose: str = "marketing") -> dict[str, Any]:
    """One candidate row as the plan builds it."""
    chans = list(s.channels)
    vals = values or [1.0] * len(chans)
    return dict(customer_id=customer, strategy=s.id, wave=wave, rm_id=rm_id, reason="test", draw=tie, tie=tie,
                control=control, priority=s.priority, purpose=purpose, channels=chans, values=vals,
                best_value=max(vals), send_at=send_at, offer="X")


def candidates(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow candidates table."""
    return pa.Table.from_pylist(rows, schema=candidates_schema())


def consent_all(customers: list[str], channels=("sms", "push", "email", "call", "rm"), purpose="marketing",
                granted=True) -> list[dict[str, Any]]:
    """Consent rows for every customer and channel."""
    return [dict(customer_id=c, purpose=purpose, channel=ch, granted=granted) for c in customers for ch in channels]
