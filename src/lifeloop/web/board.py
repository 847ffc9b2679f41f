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
