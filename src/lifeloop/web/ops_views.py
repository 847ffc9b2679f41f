"""The operations pages' view data (运营管理): pure shaping of what Context returns into rows the templates show.

Nothing here reads a file or a database or decides who may see what: the routes (:mod:`lifeloop.web.operations`)
ask the Context, which checks the permission and the scope; these functions only count, pivot and link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

# the outbox's statuses as an operator reads them: sent, waiting (not yet out: pending, claimed, sending, held for
# a second person), unknown (the provider may have it: a person decides), and the ends that are not sends
OUTBOX_GROUPS = {"sent": ("sent",), "waiting": ("pending", "claimed", "sending", "held"), "unknown": ("unknown",),
                 "failed": ("failed",), "blocked": ("blocked",), "cancelled": ("cancelled",)}
# which operations page needs which permission (the index shows a reader only what they may open)
SECTIONS = (("runs", "/ops/runs", "runs.read"), ("lists", "/ops/lists", "runs.read"),
            ("outbox", "/ops/outbox", "outbox.resolve"), ("approvals", "/ops/approvals", "approvals.read"),
            ("audit", "/ops/audit", "audit.read"), ("why", "/ops/why", "why.read"))
OPS_PERMISSIONS = frozenset(p for _, _, p in SECTIONS if p != "why.read")


def sections(permissions: Iterable[str]) -> list[dict[str, str]]:
    """The operations pages a reader may open: name and address."""
    held = set(permissions)
    return [{"name": name, "href": href} for name, href, permission in SECTIONS if permission in held]


def outbox_rows(counts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The outbox counts pivoted: one row per (list date, channel) with sent / waiting / unknown / failed /
    blocked / cancelled, newest day first."""
    group_of = {s: g for g, statuses in OUTBOX_GROUPS.items() for s in statuses}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for c in counts:
        key = (str(c["as_of"]), c["channel"])
        row = rows.setdefault(key, {"as_of": key[0], "channel": key[1], **dict.fromkeys(OUTBOX_GROUPS, 0)})
        row[group_of.get(c["status"], "waiting")] += int(c["contacts"])
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1]), reverse=True)]


def outbox_totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    out = dict.fromkeys(OUTBOX_GROUPS, 0)
    for r in rows:
        for g in OUTBOX_GROUPS:
            out[g] += r[g]
    return out


def link(path: str, **params: Any) -> str:
    """``path`` with the non-empty parameters as a query string."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def list_links(as_of: Any, cells: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each counted cell with the drill-down addresses of its contact, control and dropped rows, and of each
    drop reason."""
    out = []
    for c in cells:
        base = {"as_of": str(as_of), "strategy": c["strategy"], "wave": c["wave"], "channel": c["channel"]}
        out.append({**c, "links": {s: link("/ops/lists/rows", **base, status=s)
                                   for s in ("contact", "control", "dropped")},
                    "reasons": [{"reason": r, "n": n, "href": link("/ops/lists/rows", **base, status="dropped",
                                                                   dropped_by=r)}
                                for r, n in c["dropped_by"].items()]})
    return out


def pager(page: int, pages: int, **params: Any) -> dict[str, str | None]:
    """The previous and next page addresses of an audit search (None at either end)."""
    return {"prev": link("/ops/audit", **params, page=page - 1) if page > 1 else None,
            "next": link("/ops/audit", **params, page=page + 1) if page < pages else None}


def verification(found: Any) -> dict[str, Any]:
    """``audit verify``'s result as data: ok, entries checked, head, anchor and the breaks found (first 20)."""
    return {"ok": found.ok, "checked": found.checked, "head_id": found.head_id, "head_hash": found.head_hash,
            "anchor_id": found.anchor_id, "breaks": [str(b) for b in found.breaks[:20]]}
