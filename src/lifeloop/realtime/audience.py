"""The audience rule of a real-time strategy, checked on the customer's latest daily snapshot (in seconds).

The rule is the batch's (``strategies.yaml`` ``audience``), compiled by the same rule compiler over the same
columns — features, lifecycle stage, segments and the day's event columns — and run by the same engine
adapter over the newest ``features``/``lifecycle``/``segments`` snapshots on or before the moment's date.
The event columns (``salary_today``, ``inflow_today`` ...) come from the customer's stored events of the
moment's local day with the batch's definitions (:mod:`lifeloop.realtime.detectors`); ``birthday_today`` is
false (the snapshot, not the event stream, knows birthdays; a birthday strategy is a batch strategy).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlglot import exp

from lifeloop.config.strategies import StrategiesConfig, Strategy
from lifeloop.engine.adapters import connect
from lifeloop.engine.compile import feature_columns
from lifeloop.errors import DataError
from lifeloop.realtime.detectors import Seen, is_inflow, is_outflow
from lifeloop.strategy.audiences import EXCLUDED, SEGMENT_EXCLUDED, audience_columns, base_query, reason_expression
from lifeloop.strategy.checks import compile_audiences
from lifeloop.strategy.events import EVENT_COLUMNS, holiday_on

AREAS = ("features", "lifecycle", "segments")
KEEP_OPEN = 2   # snapshot dates an AudienceCheck keeps an engine open for (today's and a late event's day)


def event_columns(day_events: Sequence[Seen], config: StrategiesConfig, day: dt.date) -> dict[str, Any]:
    """The batch's event columns for one customer and local day, from that day's stored events."""
    inflow = sum((Decimal(str(e.get("amount"))) for e in day_events if is_inflow(e)), Decimal(0))
    outflow = sum((Decimal(str(e.get("amount"))) for e in day_events if is_outflow(e)), Decimal(0))
    salary = any(e.kind == "transaction" and e.get("direction") == "credit" and e.get("txn_type") == "salary"
                 for e in day_events)
    holiday, ahead = holiday_on(config.events, day)
    return {"salary_today": salary, "inflow_today": inflow, "large_inflow_today": inflow >= Decimal(str(
        config.events.large_inflow)), "outflow_today": outflow, "large_outflow_today": outflow >= Decimal(str(
            config.events.large_outflow)), "birthday_today": False, "holiday_today": holiday is not None,
        "holiday_name": holiday, "days_to_holiday": ahead}


def _read_by_detector(e: Seen, m: Any) -> bool:
    """Whether the detector of moment spec ``m`` reads event ``e`` at all (the definitions in detectors.py)."""
    kind = m.kind
    if kind == "salary_credited":
        return e.kind == "transaction" and e.get("direction") == "credit" and bool(
            e.get("txn_type") == "salary" or e.get("payroll"))
    if kind == "large_inflow":
        return is_inflow(e)
    if kind == "large_outflow":
        return is_outflow(e, m.other_bank_only)
    if kind == "low_balance":
        return e.kind == "transaction" and e.get("balance_after") is not None
    if kind == "first_card_swipe":
        return e.kind == "card_swipe" or (e.kind == "core_notice" and e.get("notice") == "card_activated")
    if kind == "product_interest":
        return e.kind == "app" and bool(e.get("product_id"))
    if kind == "long_absence_login":
        return e.kind == "app" and e.get("action") == "login"
    return False   # maturity: timers, not events


def decision_reads(e: Seen, moments: Sequence[Any]) -> bool:
    """Whether a decision can read event ``e``: an enabled moment's detector reads it, or the day's event
    columns (:func:`event_columns`: salary, inflows, outflows) do. An event source that forwards only these
    makes the decider fire the same moments with the same audience values (a replay filters with it)."""
    if e.kind == "transaction" and (is_inflow(e) or is_outflow(e) or (
            e.get("direction") == "credit" and e.get("txn_type") == "salary")):
        return True
    return any(m.enabled and _read_by_detector(e, m) for m in moments)


def _text(value: Any) -> str | None:
    """An event column's value as the text the query casts to the column's type (as a literal would be)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class AudienceCheck:
    """Checks real-time strategies' audience rules against the newest snapshot on or before a date."""

    def __init__(self, lake: Any, config: StrategiesConfig, strategies: Sequence[Strategy], doc: Any = None,
                 engine: str = "duckdb"):
        self.lake = lake
        self.config = config
        self.strategies = list(strategies)
        self.doc = doc
        self.engine_name = engine
        self._opened: dict[dt.date, tuple[Any, dict[str, exp.Expression], dict[str, str], tuple[list, list]]] = {}
        self._queries: dict[tuple[dt.date, tuple[str, ...]], str] = {}

    def snapshot_date(self, day: dt.date) -> dt.date | None:
        """The newest date on or before ``day`` with all three snapshots published."""
        common = set(self.lake.dates(AREAS[0]))
        for area in AREAS[1:]:
            common &= set(self.lake.dates(area))
        before = [d for d in common if d <= day]
        return max(before) if before else None

    def _open(self, snap: dt.date):
        if snap not in self._opened:
            import pyarrow.parquet as pq

            # a long-running decider meets a new snapshot every day: keep the newest few open, not every day's
            for old in sorted(self._opened)[:max(0, len(self._opened) - KEEP_OPEN + 1)]:
                self._opened.pop(old)[0].close()
                self._queries = {k: v for k, v in self._queries.items() if k[0] != old}

            files = {a: self.lake.snapshot_file(a, snap) for a in AREAS}
            engine = connect(self.engine_name)
            for a in AREAS:
                engine.register(f"_rt_{a}", [files[a]])
            feat = feature_columns(pq.read_schema(files["features"]))
            seg = feature_columns(pq.read_schema(files["segments"]))
            types = audience_columns(feat, seg)
            wanted = StrategiesConfig(holdout_salt=self.config.holdout_salt, thresholds=self.config.thresholds,
                                      events=self.config.events, strategies=self.strategies)
            trees = compile_audiences(wanted, types, snap, None)
            names = ([c for c in feat if c not in EXCLUDED], [c for c in seg if c not in SEGMENT_EXCLUDED])
            self._opened[snap] = (engine, trees, types, names)
        return self._opened[snap]

    def check(self, day: dt.date, rows: Mapping[str, dict[str, Any]],
              strategy_ids: Sequence[str]) -> tuple[dt.date | None, dict[tuple[str, str], str | None]]:
        """For customers (id -> rm_id and event columns) and strategies on ``day``: (snapshot date,
        {(customer, strategy): the reason the rule is true, or None when it is false or the customer is not in it}).

        The query of a snapshot and a set of strategies is built and turned into SQL once (the snapshots change
        once a day); each call hands the engine the moments' customers and event columns as a table (``_rt_rows``,
        text cast to the columns' types as the literals were), so a pass no longer copies and prints the rule trees.
        """
        import pyarrow as pa

        snap = self.snapshot_date(day)
        if snap is None or not rows or not strategy_ids:
            return snap, {}
        try:
            engine, trees, types, names = self._open(snap)
        except DataError:
            return None, {}
        key = (snap, tuple(strategy_ids))
        if key not in self._queries:
            self._queries[key] = engine.sql(self._query(trees, types, names, strategy_ids))
        columns = ["customer_id", "rm_id", "branch_id", *EVENT_COLUMNS]
        table = pa.table({c: pa.array([cid if c == "customer_id" else _text(r.get(c)) for cid, r in rows.items()],
                                      pa.string()) for c in columns})
        engine.register_arrow("_rt_rows", table)
        out: dict[tuple[str, str], str | None] = {}
        for r in engine.to_arrow_text(self._queries[key]).to_pylist():
            for i, sid in enumerate(strategy_ids):
                out[(r["customer_id"], sid)] = r[f"_r{i}"]
        return snap, out

    @staticmethod
    def _query(trees: Mapping[str, exp.Expression], types: Mapping[str, str], names: tuple[list, list],
               strategy_ids: Sequence[str]) -> exp.Select:
        """The audience query of these strategies over the snapshot, for the customers of ``_rt_rows``."""
        columns = ["customer_id", "rm_id", "branch_id", *EVENT_COLUMNS]
        casts = [exp.cast(exp.column(c), EVENT_COLUMNS.get(c, "VARCHAR")).as_(c) for c in columns]
        moments = exp.select(*casts).from_("_rt_rows")
        base = base_query("_rt_features", "_rt_lifecycle", "_rt_segments", "_rt_now", *names)
        base = exp.select("*").from_(base.subquery("_b")).where(
            exp.column("customer_id").isin(query=exp.select("customer_id").from_("_rt_rows")))
        select: list[exp.Expression] = [exp.column("customer_id")]
        for i, sid in enumerate(strategy_ids):
            tree = trees[sid]
            flag = exp.func("coalesce", exp.Paren(this=tree.copy()), exp.false())
            select.append(exp.Case(ifs=[exp.If(this=flag, true=reason_expression(tree, types))]).as_(f"_r{i}"))
        query = exp.select(*select).from_(base.subquery("_q"))
        return query.with_("_rt_now", as_=moments)

    def close(self) -> None:
        for engine, *_ in self._opened.values():
            engine.close()
        self._opened.clear()
        self._queries.clear()
