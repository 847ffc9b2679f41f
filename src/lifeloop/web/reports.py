"""The board's other views: lifecycle flows and KPIs, the daily sales report (每日销售报表), and their Excel exports.

The KPIs are :meth:`Context.board_kpis` (the report's, lifeloop.kpis/1; the sales alone while no lifecycle
snapshot is published in the period) over a period ending ``as_of`` (default: the
newest bank batch) of ``days`` days; a branch manager, and head office choosing a branch, see the sales of
their branches only (the lifecycle flows are counted over the whole bank, so head office alone sees them:
:func:`lifeloop.web.board.scoped_kpis`). The exports are downloads of what the reader's page shows, built and
audited by :meth:`Context.export_xlsx` (``board.export``). No ``from __future__ import annotations``: FastAPI
reads the endpoints' annotations.
"""

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from lifeloop.context import Context
from lifeloop.errors import DataError
from lifeloop.review import report_views
from lifeloop.review.report import Labels
from lifeloop.store.lake import BANK
from lifeloop.web import board
from lifeloop.web.auth import Visit, html
from lifeloop.web.pages import acting_with, as_json, day
from lifeloop.web.schemas import DailySales, Kpis, answers

PERIODS = (7, 30, 90)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Period = Literal["7", "30", "90"]


def period(ctx: Context, as_of: dt.date | None, days: int) -> tuple[dt.date, dt.date]:
    """(first, last) day of the period: ``days`` days ending ``as_of`` (default: the newest bank batch)."""
    if as_of is None:
        batches = ctx.lake.dates(BANK)
        if not batches:
            raise DataError("no bank data has been ingested yet", hint="run `lifeloop ingest FOLDER` first")
        as_of = batches[-1]
    # the calendar's first days have no ``days`` days before them: the period starts on the first day there is
    return dt.date.fromordinal(max(1, as_of.toordinal() - (days - 1))), as_of


def reader_branches(ctx: Context, branch: str) -> set[str] | None:
    """The branches whose figures the reader sees: None (the whole bank) for head office without a branch."""
    principal = ctx.require("board.read", "read the strategy board")
    if branch:
        ctx.within_branch(branch).close()   # refuses a branch the reader may not choose, as an unknown one
        return {branch}
    return None if principal.scope("lists.read").all else set(ctx.board_branches())


def plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def register(app: Any, web: Callable[[], Any]) -> None:
    """The KPI, daily sales and export routes."""
    from fastapi import Request
    from fastapi.responses import Response

    acting = acting_with(web)

    def kpis_for(w: Any, ctx: Context, as_of: dt.date | None, days: int, branch: str) -> dict[str, Any]:
        branches = reader_branches(ctx, branch)
        start, end = period(ctx, as_of, days)
        return board.scoped_kpis(w.kpis(ctx, start, end), branches)

    def sales_for(w: Any, ctx: Context, as_of: dt.date | None, days: int, branch: str) -> dict[str, Any]:
        k = kpis_for(w, ctx, as_of, days, branch)
        return {"from": k["from"], "to": k["to"], "rows": board.daily_sales(k)}

    # ------------------------------------------------------------------ lifecycle flows and KPIs
    @app.get("/api/kpis", tags=["board"], summary="Lifecycle flows and KPIs of a period (lifeloop.kpis/1), scoped",
             response_model=Kpis, responses=answers(401, 403, 404, 422))
    def api_kpis(request: Request, as_of: dt.date | None = None, days: Period = "30", branch: str = ""):
        return acting(request, True, lambda w, ctx, seen: as_json(kpis_for(w, ctx, as_of, int(days), branch)))

    @app.get("/kpis", include_in_schema=False)
    def kpis_page(request: Request, as_of: str = "", days: str = "30", branch: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            n = int(days) if days in {str(p) for p in PERIODS} else 30
            k = kpis_for(w, ctx, day(as_of), n, branch)
            names = Labels(None, board.LABEL_LANGUAGE.get(seen.lang, "zh"))
            flows = None if k["bank_wide_hidden"] or k.get("lifecycle_missing") else report_views.flows(k, names)
            return html(w, seen, "kpis.html.j2", kpis=k, flows=flows, branches=ctx.board_branches(),
                        periods=PERIODS, chosen={"as_of": as_of, "days": str(n), "branch": branch})
        return acting(request, False, work)

    # ------------------------------------------------------------------ the daily sales report
    @app.get("/api/daily-sales", tags=["board"],
             summary="The daily sales report (每日销售报表): per day, branch and product type, scoped",
             response_model=DailySales, responses=answers(401, 403, 404, 422))
    def api_daily_sales(request: Request, as_of: dt.date | None = None, days: Period = "30", branch: str = ""):
        return acting(request, True, lambda w, ctx, seen: as_json(sales_for(w, ctx, as_of, int(days), branch)))

    @app.get("/daily-sales", include_in_schema=False)
    def daily_sales_page(request: Request, as_of: str = "", days: str = "30", branch: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            n = int(days) if days in {str(p) for p in PERIODS} else 30
            sales = sales_for(w, ctx, day(as_of), n, branch)
            return html(w, seen, "daily_sales.html.j2", sales=sales, branches=ctx.board_branches(),
                        periods=PERIODS, chosen={"as_of": as_of, "days": str(n), "branch": branch})
        return acting(request, False, work)

    # ------------------------------------------------------------------ Excel exports (audited)
    def download(name: str, data: bytes) -> Any:
        return Response(data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    xlsx = {200: {"description": "An Excel workbook", "content": {XLSX: {"schema": {"type": "string",
                                                                                    "format": "binary"}}}}}

    @app.get("/exports/board.xlsx", tags=["board"], summary="The strategy board as an Excel file (audited)",
             response_class=Response, responses={**xlsx, **answers(401, 403, 404, 422)})
    def export_board(request: Request, owner: str = "", objective: str = "", as_of: dt.date | None = None,
                     branch: str = "", interim: bool = False):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            doc = board.narrow(w.board(ctx, as_of, branch or None, interim), owner=owner or None,
                               objective=objective or None)
            rows = [{k: plain(v) for k, v in r.items()} for r in board.export_rows(doc)]
            return download(*ctx.export_xlsx("board", board.BOARD_COLUMNS, rows, filters={
                "owner": owner, "objective": objective, "as_of": as_of, "branch": branch, "interim": interim}))
        return acting(request, True, work)

    @app.get("/exports/daily-sales.xlsx", tags=["board"],
             summary="The daily sales report as an Excel file (audited)",
             response_class=Response, responses={**xlsx, **answers(401, 403, 404, 422)})
    def export_daily_sales(request: Request, as_of: dt.date | None = None, days: Period = "30", branch: str = ""):
        def work(w: Any, ctx: Context, seen: Visit) -> Any:
            sales = sales_for(w, ctx, as_of, int(days), branch)
            rows = [{k: plain(v) for k, v in r.items()} for r in sales["rows"]]
            return download(*ctx.export_xlsx("daily_sales", board.SALES_COLUMNS, rows, filters={
                "as_of": sales["to"], "days": days, "branch": branch}))
        return acting(request, True, work)
