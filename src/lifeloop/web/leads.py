"""Leads (转介线索): people referred to an RM — by a customer of theirs, or by a colleague of the branch through the
marketing form's referral — shown under the RM's worklist, with their JSON API. Scoped like the worklist (an RM:
their own; a branch manager or head office names the RM), name and mobile masked for the reader. No
``from __future__ import annotations``: FastAPI reads the annotations.
"""

from collections.abc import Callable
from typing import Any

from lifeloop.web.auth import html
from lifeloop.web.ops_schemas import Leads
from lifeloop.web.pages import acting_with, as_json
from lifeloop.web.schemas import answers


def register(app: Any, web: Callable[[], Any]) -> None:
    """The leads' routes."""
    from fastapi import Request
    from fastapi.responses import HTMLResponse

    acting = acting_with(web)

    @app.get("/api/leads", tags=["workbench"],
             summary="An RM's open leads (people referred to them), newest first, masked for the reader",
             response_model=Leads, responses=answers(401, 403, 404, 422))
    def api_leads(request: Request, rm: str = ""):
        return acting(request, True, lambda w, ctx, seen: as_json({"leads": ctx.leads(rm or None)}))

    @app.get("/leads/fragment", include_in_schema=False)
    def leads_fragment(request: Request):
        """The signed-in RM's leads under their worklist (nothing for a reader without one book of their own)."""
        def work(w: Any, ctx: Any, seen: Any) -> Any:
            if len(ctx.principal.rm_ids) != 1:
                return HTMLResponse("")
            return html(w, seen, "_leads.html.j2", leads=ctx.leads())
        return acting(request, False, work)
