"""The strategy board's page data (策略管理看板): the ``lifeloop evaluate`` document, filtered, and its rows.

Pure: takes the ``lifeloop.review/1`` document that :meth:`Context.evaluate` returns and narrows it by owner
and objective (the period is the evaluation's as-of date, chosen when it is computed); the rows, forest plots
and breakdowns are the HTML report's (:func:`lifeloop.review.report.board`), so the page, the report and the
terminal agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifeloop.data.access import not_visible
from lifeloop.review.report import Labels, board

LABEL_LANGUAGE = {"zh_CN": "zh", "en": "en"}


def options(review: Mapping[str, Any]) -> dict[str, list[str]]:
    """The owners and objectives the board's filters offer (those of the evaluated strategies)."""
    strategies = [s for s in review.get("strategies") or [] if s]
    return {"owners": sorted({s.get("owner") for s in strategies if s.get("owner")}),
            "objectives": sorted({(s.get("objective") or {}).get("kind") for s in strategies
                                  if (s.get("objective") or {}).get("kind")})}


def narrow(review: Mapping[str, Any], *, owner: str | None = None, objective: str | None = None) -> dict[str, Any]:
    """The document with only the strategies of ``owner`` and ``objective`` (either may be empty: all), and the
    suggestions about them (a suggestion about no strategy in particular stays)."""
    kept = [s for s in review.get("strategies") or [] if s
            and (not owner or s.get("owner") == owner)
            and (not objective or (s.get("objective") or {}).get("kind") == objective)]
    ids = {s["strategy"] for s in kept}
    return {**review, "strategies": kept,
            "suggestions": [x for x in review.get("suggestions") or []
                            if not x.get("strategy") or x["strategy"] in ids]}


def one(review: Mapping[str, Any], strategy: str) -> dict[str, Any]:
    """One strategy's document (for the drill-down), or the refusal an unknown strategy gets."""
    for s in review.get("strategies") or []:
        if s and s.get("strategy") == strategy:
            return {**review, "strategies": [s],
                    "suggestions": [x for x in review.get("suggestions") or [] if x.get("strategy") == strategy]}
    raise not_visible("strategy", strategy, [s["strategy"] for s in review.get("strategies") or [] if s])


def rows(review: Mapping[str, Any], lang: str, labels: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The report's board rows (names, uplift with CI, verdict, money, ROI, forest plots, breakdowns, cells)."""
    return board(review, Labels(labels, LABEL_LANGUAGE.get(lang, "zh")))


# ---------------------------------------------------------------------------- lifecycle KPIs and daily sales
SALES_COLUMNS = ("day", "branch_id", "product_type", "accounts", "customers", "amount")
BOARD_COLUMNS = ("strategy", "name_zh", "name_en", "owner", "objective", "treated", "control", "outcome", "uplift",
                 "ci_low", "ci_high", "p_value", "verdict", "cost", "incremental_aum", "incremental_fee_income", "roi")


def daily_sales(kpis: Mapping[str, Any], branches: set[str] | None = None) -> list[dict[str, Any]]:
    """每日销售报表 as a branch reads it: per day x branch x product type, the new accounts, the customers who
    opened them and the amount (each new holding's balance at its first snapshot, :func:`lifeloop.review.kpis.
    sales_query`), summed over the branch's RMs; only ``branches`` when given (a branch manager's, or the filter)."""
    out: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for r in kpis.get("daily_sales") or []:
        if branches is not None and r.get("branch_id") not in branches:
            continue
        key = (r["day"], r.get("branch_id"), r.get("product_type"))
        row = out.setdefault(key, {"day": r["day"], "branch_id": r.get("branch_id"),
                                   "product_type": r.get("product_type"), "accounts": 0, "customers": 0,
                                   "amount": 0})
        row["accounts"] += int(r["accounts"])
        row["customers"] += int(r["customers"])   # a customer is in one RM's book: the RMs' counts do not overlap
        row["amount"] += r["amount"]
    return sorted(out.values(), key=lambda r: (str(r["day"]), r["branch_id"] or "", r["product_type"] or ""))


def scoped_kpis(kpis: Mapping[str, Any], branches: set[str] | None) -> dict[str, Any]:
    """The KPIs a reader may see: the whole bank's for head office without a branch; with ``branches`` (a branch
    manager's, or head office's branch filter) only the sales of those branches — the lifecycle flows and rates
    are counted over the whole bank, so they are left out (``bank_wide_hidden``) rather than shown as a branch's."""
    if branches is None:
        return {**kpis, "bank_wide_hidden": False}
    sales = [r for r in kpis.get("daily_sales") or [] if r.get("branch_id") in branches]
    return {"schema": kpis.get("schema"), "from": kpis.get("from"), "to": kpis.get("to"),
            "snapshots": kpis.get("snapshots"), "lifecycle_missing": kpis.get("lifecycle_missing"),
            "daily_sales": sales,
            "sales_by_branch_rm": [r for r in kpis.get("sales_by_branch_rm") or [] if r.get("branch_id") in branches],
            "bank_wide_hidden": True}


def export_rows(review: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The board as plain rows for a spreadsheet: numbers as numbers (not the page's formatted text)."""
    rows = []
    for s in review.get("strategies") or []:
        if not s:
            continue
        head, money_, entries = s.get("headline") or {}, s.get("money") or {}, s.get("entries") or {}
        rows.append({"strategy": s["strategy"], "name_zh": (s.get("name") or {}).get("zh"),
                     "name_en": (s.get("name") or {}).get("en"), "owner": s.get("owner"),
                     "objective": (s.get("objective") or {}).get("kind"), "treated": entries.get("treated"),
                     "control": entries.get("control"), "outcome": head.get("outcome") or s.get("primary_outcome"),
                     "uplift": head.get("uplift"), "ci_low": head.get("ci_low"), "ci_high": head.get("ci_high"),
                     "p_value": head.get("p_value"), "verdict": s.get("verdict"), "cost": money_.get("cost"),
                     "incremental_aum": money_.get("incremental_aum"),
                     "incremental_fee_income": money_.get("incremental_fee_income"), "roi": money_.get("roi")})
    return rows
