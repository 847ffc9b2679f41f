"""Why (决策回放): every decision the plan made about one customer on one day, from stored snapshots only.

Nothing of today's configuration is used: the strategy map and contact policy are the copies the
audiences step stored next to its snapshot (``lake/audiences/as_of=D/strategies.yaml`` and
``contact_policy.yaml``), the rule inputs are that day's features, lifecycle and segments snapshots
and the bank batches on or before D, and the outcomes are that day's lists. So the same question asked
months later, after other runs and config edits, gets the same answer.

For each strategy of the stored map: active or not, the audience rule re-evaluated for this customer
with the values of every column it names, whether the customer was in the audience (and why), and per
candidate row of the lists: group and holdout draw against the share, suitability, arbitration rank
(priority class, then value) and, per channel, the prior uplift, review's evidence, the weight it got
and the expected value used (from the ``values.parquet`` the plan stored that day, for the customer's
value tier), the policy that dropped it with every channel tried, or the channel, time and script it
went out with. The config version is the manifests' config hash and run ids.

Money is masked for the viewer (:mod:`lifeloop.data.masking`): a money-valued column a rule read
(:mod:`lifeloop.insight.money`) and its value in the audiences' reasons show as a band (``10k-100k``)
unless the viewer's role sees money exactly; the default viewer is the most restrictive, an analyst.
The strategy's own economics (value of success, cost, expected value) are the bank's figures, not the
customer's, and are shown as they are.

Real-time decisions (docs/realtime.md) of the day are explained too, from the operations database's records
(``moment_decisions`` with their moment and outbox item): the moment and the event that made it fire, each
strategy's outcome and reason, and what became of the contact (sent, blocked at the gate and why, pending).
A day with real-time decisions but no batch plan is explained from those alone.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.loader import config_hash, load_model
from lifeloop.config.masking import masking_policy
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.data.masking import Role, mask_money, mask_money_text, mask_money_values, money_band, role
from lifeloop.engine.compile import compile_rule, feature_columns
from lifeloop.errors import DataError, NotFoundError, did_you_mean
from lifeloop.insight.money import money_columns, workspace_money_tags
from lifeloop.strategy.arbitration import order, priority_class
from lifeloop.strategy.audiences import EXCLUDED, SEGMENT_EXCLUDED, audience_columns, base_query
from lifeloop.strategy.events import events_query
from lifeloop.strategy.learning import ALL, learned_values
from lifeloop.strategy.plan import best_values, day_tiers

if TYPE_CHECKING:
    import pyarrow as pa

CONFIGS = ("strategies", "contact_policy")
INPUTS = ("features", "lifecycle", "segments")


def stored_config_hash(folder: Any) -> str:
    """The config hash of the stored copies, computed as :meth:`Context.config_hash` does for live files."""

    return config_hash(folder, *CONFIGS)


def plain(value: Any) -> Any:
    """A value as JSON-friendly data (doubles to 4 decimals, as the audiences' reasons show them)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _rows(path: Any, customer_id: str) -> list[dict[str, Any]]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.filter(pc.equal(table["customer_id"], customer_id)).to_pylist()


def _stored_map(lake: Any, as_of: dt.date) -> tuple[Any, Any, str]:
    """The strategy map and contact policy stored with the day's audiences, and their hash."""

    folder = lake.snapshot_dir("audiences", as_of)
    missing = [n for n in CONFIGS if not (folder / f"{n}.yaml").exists()]
    if missing:
        raise DataError(f"the audiences snapshot of {as_of} holds no copy of "
                        f"{', '.join(m + '.yaml' for m in missing)}, "
                        "so its decisions cannot be replayed from stored data",
                        hint=f"snapshots from before decision replay existed lack it; re-run "
                             f"`lifeloop run --as-of {as_of} --steps audiences,plan` "
                             "to store one (with today's config)")
    config, _ = load_model(StrategiesConfig, folder / "strategies.yaml")
    policy, _ = load_model(ContactPolicy, folder / "contact_policy.yaml")
    return config, policy, stored_config_hash(folder)


def _rule_inputs(ctx: Any, config: Any, customer_id: str,
                 as_of: dt.date) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], dict[str, frozenset[str]]]:
    """The customer's row of the rules' input (stored features, stage, segments, day's events) and each rule's outcome.

    Returns (values by column, {strategy: True/False or an error text}, column types, {strategy: names its
    rule reads}; a stored rule that no longer compiles reads no names, so it shows no values).
    """
    import pyarrow.parquet as pq


    lake, engine = ctx.lake, ctx.engine("duckdb")
    files = {area: lake.snapshot_file(area, as_of) for area in INPUTS}
    feats = feature_columns(pq.read_schema(files["features"]))
    segs = feature_columns(pq.read_schema(files["segments"]))
    types = audience_columns(feats, segs)
    outcome: dict[str, Any] = {}
    reads: dict[str, frozenset[str]] = {}
    flags: list[exp.Expression] = [exp.Star()]
    for i, s in enumerate(config.strategies):
        try:
            tree = compile_rule(s.audience, columns=types, thresholds=config.thresholds, as_of=as_of,
                                where=f"stored strategy {s.id} audience")
        except Exception as exc:  # a stored rule that no longer compiles is reported, not fatal
            outcome[s.id] = f"cannot evaluate: {getattr(exc, 'message', exc)}"
            continue
        reads[s.id] = tree.meta["names"]
        flags.append(exp.alias_(exp.func("coalesce", exp.Paren(this=tree), exp.false()), f"_why_f{i}"))
    engine.register_bank(lake, as_of)
    for area in INPUTS:
        engine.register(f"_why_{area}", [files[area]])
    engine.create_view("_why_events", events_query(config.events, as_of))
    engine.create_view("_why_base", base_query("_why_features", "_why_lifecycle", "_why_segments", "_why_events",
                                               [c for c in feats if c not in EXCLUDED],
                                               [c for c in segs if c not in SEGMENT_EXCLUDED]))
    query = exp.select(*flags).from_("_why_base").where(
        exp.EQ(this=exp.column("customer_id"), expression=exp.Literal.string(customer_id)))
    found = engine.to_arrow(query).to_pylist()
    if not found:
        ids = pq.read_table(files["features"], columns=["customer_id"])["customer_id"].to_pylist()
        raise NotFoundError(f"customer {customer_id} is not in the features snapshot of {as_of}"
                            f"{did_you_mean(customer_id, ids)}",
                            hint="check the customer number (it is case-sensitive); only customers the bank's data "
                                 "held on that day have decisions")
    row = found[0]
    for i, s in enumerate(config.strategies):
        if f"_why_f{i}" in row:
            outcome[s.id] = bool(row.pop(f"_why_f{i}"))
    return row, outcome, types, reads


def _decision(row: dict[str, Any], share: float) -> str:
    """One sentence: what happened to this candidate."""
    if row["status"] == "contact":
        return f"contacted by {row['channel']} at {row['send_at'] or 'any time'} with script {row['script_id']}"
    if row["status"] == "control":
        return f"control group: held out (draw {row['holdout_draw']:.4f} < holdout {share})"
    who = "control candidate" if row["group"] == "control" else "treated candidate"
    return f"dropped by {row['dropped_by']} ({who}): {row['detail']}"


def _stored_values(lake: Any, as_of: dt.date, config: Any, policy: Any) -> tuple[pa.Table, str]:
    """The learned-values table the plan stored for the day, or (older plans) the configured priors."""
    import pyarrow.parquet as pq


    path = lake.snapshot_dir("lists", as_of) / "values.parquet"
    if path.exists():
        return pq.read_table(path), "stored"
    return learned_values(config, policy), "priors (the plan of this day stored no learned values)"


def with_values(day: pa.Table, audiences: Any) -> pa.Table:
    """The day's lists with each row's value of a success (``expected.value_by``) from the audiences it was planned
    from, as the plan read it (null where none: the strategy's ``expected.value``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if "value" not in pq.read_schema(audiences).names:     # audiences from before value_by
        return day
    aud = pq.read_table(audiences, columns=["customer_id", "strategy", "wave", "value"])
    known = {(c, s, w): v for c, s, w, v in zip(*(aud[k].to_pylist() for k in ("customer_id", "strategy", "wave",
                                                                                 "value")), strict=True)
             if v is not None}
    keys = zip(*(day[k].to_pylist() for k in ("customer_id", "strategy", "wave")), strict=True)
    return day.append_column("value", pa.array([known.get(k) for k in keys], pa.float64()))


def _day_ranks(lists: pa.Table, best: pa.Array, customer_id: str, settings: Any) -> dict[tuple[str, str], int]:
    """The customer's positions in the whole day's arbitration order (as arbitration.order sorts candidates)."""
    import pyarrow as pa


    keyed = pa.table({"priority": lists["priority"], "best_value": best,
                      "tie": lists["holdout_draw"], "customer_id": lists["customer_id"],
                      "strategy": lists["strategy"], "wave": lists["wave"]})
    idx = order(keyed, settings)
    cust, strat, wave = (lists[c].to_pylist() for c in ("customer_id", "strategy", "wave"))
    return {(strat[i], wave[i]): pos for pos, i in enumerate(idx, 1) if cust[i] == customer_id}


def _value_rows(values: pa.Table, segment: str | None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per (strategy, wave): each channel's prior, evidence, weight and value used for the customer's segment."""

    whole: dict[tuple[str, str, str], dict[str, Any]] = {}
    mine: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in values.to_pylist():
        key = (r["strategy"], r["wave"], r["channel"])
        if r["segment"] == ALL:
            whole[key] = r
        elif r["segment"] == segment:
            mine[key] = r
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for key, r in whole.items():
        used = mine.get(key, r)
        out.setdefault(key[:2], []).append({
            "channel": key[2], "segment": used["segment"], "prior_uplift": r["prior_uplift"],
            "prior_sd": r["prior_sd"],
            "evidence": {"treated": used["treated"], "control": used["control"],
                         "uplift": plain(used["observed_uplift"]), "se": plain(used["se"])},
            "evidence_used": used["evidence_used"], "weight": used["weight"],
            "uplift": round(used["uplift"], 6), "value_of_success": used["value_of_success"], "cost": used["cost"],
            "expected_value": used["expected_value"], "_uplift": used["uplift"]})
    return out


def _candidates(rows: list[dict[str, Any]], config: Any, settings: Any, best_values: dict[tuple[str, str], float],
                day_ranks: dict[tuple[str, str], int], day_size: int,
                value_rows: dict[tuple[str, str], list[dict[str, Any]]], viewer: Role) -> list[dict[str, Any]]:
    """The customer's lists rows in arbitration order, each with its ranks, values and decision."""

    def best(r: dict[str, Any]) -> float:
        return best_values.get((r["strategy"], r["wave"]), float("-inf"))

    keyed = sorted(rows, key=lambda r: (-priority_class(r["priority"] or 0, settings), -best(r), r["holdout_draw"],
                                        r["strategy"], r["wave"]))
    def own(r: dict[str, Any]) -> bool:
        """The row is valued by the customer's own value of a success (expected.value_by)."""
        s = config.strategy(r["strategy"])
        return r.get("value") is not None and s is not None and s.expected.value_by is not None

    def shown(r: dict[str, Any], amount: Any) -> Any:
        """A value made of the customer's own value of a success (a share of their CLV, say) is money about them:
        exact or banded for the viewer."""
        return mask_money(amount, viewer) if own(r) else amount

    def channels(r: dict[str, Any]) -> list[dict[str, Any]]:
        """Each channel's values; with the customer's own value of a success, its own."""
        worth = r.get("value")
        # the customer's own value (a share of their CLV, say) is money about them: exact or banded for the viewer
        return [{k: v for k, v in {**c, **({"value_of_success": shown(r, worth), "expected_value": shown(
                    r, round(c["_uplift"] * worth - c["cost"], 6))} if own(r) else {})}.items() if k != "_uplift"}
                for c in value_rows.get((r["strategy"], r["wave"]), [])]

    out = []
    for rank, r in enumerate(keyed, 1):
        s = config.strategy(r["strategy"])
        share = s.holdout if s else None
        out.append({
            "strategy": r["strategy"], "wave": r["wave"], "rank": rank, "of": len(keyed),
            "day_rank": day_ranks.get((r["strategy"], r["wave"])), "day_candidates": day_size,
            "group": r["group"], "cell": r.get("cell"), "status": r["status"],
            "decision": _decision(r, share if share is not None else 0.0),
            "holdout": {"draw": round(r["holdout_draw"], 6), "share": share, "control": r["group"] == "control",
                        "salt": config.holdout_salt},
            "priority": r["priority"], "priority_class": priority_class(r["priority"] or 0, settings),
            "best_value": shown(r, round(best(r), 6)),
            "values": channels(r),
            "expected_value": shown(r, plain(r["expected_value"])), "cost": plain(r["cost"]),
            "suitability": r["suitability"], "dropped_by": r["dropped_by"], "detail": r["detail"],
            "channel": r["channel"], "send_at": r["send_at"], "script_id": r["script_id"],
            "script_key": r["script_key"], "offer": r["offer"], "purpose": r["purpose"], "reason": r["reason"]})
    return out


def explain(ctx: Any, customer_id: str, as_of: dt.date, viewer: Role | None = None) -> dict[str, Any]:
    """Every decision about ``customer_id`` on ``as_of``, replayed from that day's stored snapshots.

    Money (AUM, balances, amounts in the rule values and the audiences' reasons) is shown as ``viewer``
    may see it; without a viewer, as the most restrictive role (analyst) sees it: banded.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    viewer = viewer or role("analyst", masking_policy(ctx.configs))
    lake = ctx.lake
    if not has_plan(lake, as_of):
        planned = lake.dates("lists")
        raise NotFoundError(f"no plan as of {as_of}: nothing was decided that day",
                            hint=("planned days: " + ", ".join(d.isoformat() for d in planned[-5:])) if planned
                            else f"run `lifeloop run --as-of {as_of} --steps audiences,plan` first")
    lists_m, aud_m = lake.manifest("lists", as_of), lake.manifest("audiences", as_of)
    config, policy, stored_hash = _stored_map(lake, as_of)
    values, outcome, types, reads = _rule_inputs(ctx, config, customer_id, as_of)
    audience = _rows(lake.snapshot_dir("audiences", as_of) / "audiences.parquet", customer_id)
    day = with_values(pq.read_table(lake.snapshot_dir("lists", as_of) / "lists.parquet"),
                      lake.snapshot_dir("audiences", as_of) / "audiences.parquet")
    mine = pc.equal(day["customer_id"], customer_id)
    own = day.filter(mine)
    listed = own.to_pylist()
    learned, source = _stored_values(lake, as_of, config, policy)
    tiers = day_tiers(lake, as_of)
    segment = _segment_of(tiers, customer_id)
    day_best = best_values(day, config, policy, learned, tiers)
    best = dict(zip(zip(own["strategy"].to_pylist(), own["wave"].to_pylist(), strict=False),
                    day_best.filter(mine).to_pylist(), strict=False))
    settings = policy.arbitration
    cands = _candidates(listed, config, settings, best, _day_ranks(day, day_best, customer_id, settings), day.num_rows,
                        _value_rows(learned, segment), viewer)
    money = money_columns(types, workspace_money_tags(ctx.configs))
    for c in cands:
        c["reason"] = mask_money_text(c["reason"], money, viewer)
        c["detail"] = mask_money_text(c["detail"], money, viewer)
    strategies = []
    for s in config.strategies:
        names = reads.get(s.id, frozenset())
        columns = sorted(n for n in names if n in types and n not in config.thresholds)
        waves = [a for a in audience if a["strategy"] == s.id]
        rule = outcome.get(s.id)
        entry: dict[str, Any] = {
            "strategy": s.id, "name": s.name.zh or s.name.en, "active": s.active_on(as_of),
            "rule": s.audience, "rule_true": rule if isinstance(rule, bool) else None,
            "values": mask_money_values({c: plain(values.get(c)) for c in columns}, money, viewer),
            "thresholds": {k: v for k, v in config.thresholds.items() if k in names},
            "eligible": bool(waves),
            "audience": [{"wave": a["wave"], "reason": mask_money_text(a["reason"], money, viewer)} for a in waves],
            "candidates": [c for c in cands if c["strategy"] == s.id]}
        entry["why"] = _eligibility(s, entry, rule, as_of)
        strategies.append(entry)
    return {
        "customer_id": customer_id, "as_of": as_of.isoformat(), "planned": True,
        "access": {"role": viewer.name, "money": "exact" if viewer.money_exact else "banded",
                   "money_columns": sorted(money & set(types))},
        "decisions": cands, "strategies": strategies,
        "contacted": [c for c in cands if c["status"] == "contact"],
        "arbitration": {"rank_by": settings.rank_by, "class_size": settings.class_size, "segment": segment,
                        "values": source, "learn": settings.learn, "min_customers": settings.min_customers},
        "version": {"config_hash": lists_m.get("config_hash"), "plan_config_hash": lists_m.get("config_hash"),
                    "stored_config_hash": stored_hash,
                    "consistent": lists_m.get("config_hash") == stored_hash
                    and _same_files(aud_m, lake.snapshot_dir("audiences", as_of)),
                    "run_ids": {"lists": lists_m.get("run_id"), "audiences": aud_m.get("run_id"),
                                **{a: v["run_id"] for a, v in (aud_m.get("inputs") or {}).items()
                                   if isinstance(v, dict) and "run_id" in v}}},
    }


def _same_files(manifest: dict[str, Any], folder: Any) -> bool:
    """Whether the audiences step read the very strategy map and contact policy stored beside it."""
    read = manifest.get("configs") or {}
    return all(read.get(n) == config_hash(folder, n) for n in CONFIGS)


def _segment_of(tiers: pa.Table | None, customer_id: str) -> str | None:
    """The customer's value tier of the day (None when the day has no segments)."""
    import pyarrow.compute as pc

    if tiers is None:
        return None
    hit = tiers.filter(pc.equal(tiers["customer_id"], customer_id))["tier"].to_pylist()
    return hit[0] if hit else None


def _eligibility(s: Any, entry: dict[str, Any], rule: Any, as_of: dt.date) -> str:
    """Why the customer was (not) in this strategy's audience that day."""
    if not entry["active"]:
        return f"not active on {as_of} (start {s.start}, end {s.end or 'open'})" + ("" if s.enabled else ", disabled")
    shown = ", ".join(f"{k}={v}" for k, v in entry["values"].items())
    if entry["eligible"]:
        return "; ".join(f"eligible for wave {a['wave']}: {a['reason']}" for a in entry["audience"])
    if isinstance(rule, str):
        return rule
    if rule:
        return (f"audience rule true ({shown}) but not in the audience: entered the strategy within "
                f"reentry_days ({s.reentry_days})")
    return f"audience rule false ({shown or 'no columns'})"


# ------------------------------------------------------------------------------------------ real-time decisions
_AMOUNT = re.compile(r"(?<![0-9A-Za-z_.,])-?[0-9]{1,3}(?:,[0-9]{3})*\.[0-9]{2}(?![0-9])")


def has_plan(lake: Any, as_of: dt.date) -> bool:
    """Whether the batch planned ``as_of`` (its lists and audiences are stored)."""
    return lake.exists("lists", as_of) and lake.exists("audiences", as_of)


def _band_amounts(text: str | None, viewer: Role) -> str | None:
    """The detectors' amounts (``8,000.00``) as bands for a viewer who does not see money exactly."""
    if text is None or viewer.money_exact:
        return text
    return _AMOUNT.sub(lambda m: money_band(m.group(0).replace(",", "")), text)


def _delivery(d: dict[str, Any]) -> str:
    """One sentence: what became of a real-time decision's contact."""
    x = d["dispatch"]
    if d["outcome"] == "control":
        return "control group: recorded, never sent"
    if d["outcome"] != "treated":
        return "no contact"
    if x is None:
        return f"no outbox item {d['dispatch_key']} (not enqueued)"
    status = x["status"]
    if status == "sent":
        return f"sent by {d['channel']} at {x['sent_at']:%Y-%m-%d %H:%M} UTC"
    if status == "blocked":
        return f"blocked at the contact gate: {x['blocked_reason']}"
    if status in ("pending", "held"):
        return f"{status}: waiting to go out by {d['channel']} (next attempt {x['next_attempt_at']:%Y-%m-%d %H:%M} UTC)"
    if status == "cancelled":
        return f"cancelled: {x['blocked_reason'] or x['last_error'] or 'by an operator'}"
    return f"{status} ({x['attempts']} attempt(s){': ' + x['last_error'] if x['last_error'] else ''})"


def realtime(ctx: Any, rows: list[dict[str, Any]], viewer: Role,
             money: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The day's real-time decisions (``store.ops.events.day_decisions`` rows) as ``why`` shows them: amounts
    and money-valued rule values banded for a viewer who does not see money exactly."""
    money = frozenset(money) | (workspace_money_tags(ctx.configs) or frozenset())
    out = []
    for d in rows:
        reason = mask_money_text(_band_amounts(d["reason"], viewer), money, viewer)
        out.append({
            "moment": d["moment"], "event_id": d["event_id"] or "(timer)", "event_kind": d["event_kind"],
            "scope": d["scope"], "occurred_at": d["occurred_at"].isoformat(),
            "moment_reason": _band_amounts(d["moment_reason"], viewer),
            "strategy": d["strategy"], "outcome": d["outcome"], "reason": reason, "wave": d["wave"],
            "channel": d["channel"], "dispatch_key": d["dispatch_key"],
            "delivery": d["dispatch"]["status"] if d["dispatch"] else None,
            "decision": _delivery(d)})
    return out


def realtime_only(customer_id: str, as_of: dt.date, viewer: Role) -> dict[str, Any]:
    """The report of a day the batch did not plan (only real-time decisions were made)."""
    return {"customer_id": customer_id, "as_of": as_of.isoformat(),
            "access": {"role": viewer.name, "money": "exact" if viewer.money_exact else "banded", "money_columns": []},
            "decisions": [], "strategies": [], "contacted": [], "arbitration": None, "version": None,
            "planned": False}
