"""Strategy versions with maker-checker (双人复核) and branch variants (一行一策): the pure rules.

``config/strategies.yaml`` stays the head office's baseline (version 0 of every strategy in it). The strategy
editor keeps *versions* of single strategies in the operations database (:mod:`lifeloop.store.ops.
strategy_versions`): a maker drafts one, submits it, and a checker — another person, holding the ``approver``
role — approves or rejects it with a comment. Only approved versions go live. Nothing here reads a file or a
database: this module decides which transition is allowed, who may make it, what the diff between two versions
is, and what the **live map** is (the YAML map with each strategy replaced by its latest approved version, and
each approved branch variant added for its branch's customers). docs/strategies.md, "Versions".

A branch variant of strategy ``S`` for branch ``B01`` becomes, in the live map, the strategy ``s__b01``
(:func:`variant_id`) whose audience is the variant's rule restricted to ``branch_id = 'B01'``; the head-office
strategy ``S`` then excludes that branch (``branch_id NOT IN ('B01')``), so each customer meets one of them.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lifeloop.data.access import PermissionDenied, Principal
from lifeloop.errors import LifeloopError

STATUSES = ("draft", "submitted", "approved", "rejected", "reverted")
LIVE = "approved"
BASELINE = 0   # version 0: the strategy as config/strategies.yaml has it

# (status, action) -> the status after it; anything else is refused
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "save"): "draft",            # the maker edits their own draft
    ("draft", "submit"): "submitted",      # ... and hands it to a checker (frozen from now on)
    ("submitted", "approve"): "approved",  # a different person with the approver role: it goes live
    ("submitted", "reject"): "rejected",   # ... or sends it back with a comment (the maker drafts anew)
    ("approved", "supersede"): "reverted",  # an approved version a later approved revert rolled back
}


class VersionError(LifeloopError):
    """A strategy version cannot make the transition asked for (its status, or who asks)."""


def transition(status: str, action: str, *, strategy: str, version: int) -> str:
    """The status after ``action`` on a version in ``status``, or a refusal saying what is possible."""
    after = TRANSITIONS.get((status, action))
    if after is None:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == status and a != "supersede")
        raise VersionError(f"strategy {strategy} version {version} is {status}: it cannot be {_done(action)}",
                           hint=(f"a {status} version can be {', '.join(_done(a) for a in allowed)}" if allowed else
                                 f"a {status} version is final; draft a new version (`lifeloop strategies draft "
                                 f"{strategy} --file FILE`) or revert to it (`lifeloop strategies revert "
                                 f"{strategy} {version}`)"))
    return after


def _done(action: str) -> str:
    return {"save": "edited", "submit": "submitted", "approve": "approved", "reject": "rejected",
            "supersede": "superseded"}.get(action, action)


def may_edit(principal: Principal, branch_id: str | None) -> bool:
    """Whether ``principal`` may draft this head-office strategy (branch None) or a variant for ``branch_id``:
    head office (``strategies.edit`` through admin or analyst) anything; a branch manager their branch's
    variants only."""
    if not principal.can("strategies.edit"):
        return False
    scope = principal.scope("strategies.edit")
    if scope.all:
        return True
    return branch_id is not None and branch_id in scope.branch_ids


def may_see(principal: Principal, branch_id: str | None) -> bool:
    """Whether ``principal`` may see versions of a head-office strategy (everyone who reads the map) or of a
    variant for ``branch_id`` (head office, approvers, that branch's manager): another branch's variant is
    "not found"."""
    if not principal.can("strategies.read"):
        return False
    if branch_id is None or principal.roles & {"admin", "analyst", "compliance", "approver"}:
        return True
    return branch_id in principal.scope("strategies.read").branch_ids


def check_checker(principal: Principal, author: str, strategy: str, version: int) -> None:
    """Maker-checker: the checker holds the approver role and is not the version's author."""
    if not principal.can("strategies.approve"):
        raise PermissionDenied(f"user {principal.user_id} may not approve or reject strategy versions",
                               hint="it needs the approver role (双人复核); an administrator grants it")
    if principal.user_id == author:
        raise PermissionDenied(f"strategy {strategy} version {version} was drafted by {author}: the maker cannot "
                               "also be its checker", hint="another user with the approver role decides it")


def diff(before: str, after: str, before_label: str, after_label: str) -> str:
    """A unified diff of two versions' YAML text (empty when they are the same)."""
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=before_label, tofile=after_label))


def dump(definition: Mapping[str, Any]) -> str:
    """One strategy as YAML text, keys in their order, Chinese as written."""
    import yaml

    return yaml.safe_dump(dict(definition), sort_keys=False, allow_unicode=True, width=120)


def variant_id(strategy: str, branch: str) -> str:
    """The live map's id of a branch variant (``maturity_reinvestment`` for B01 -> ``maturity_reinvestment__b01``)."""
    return f"{strategy}__{branch.lower()}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def only_branch(rule: str, branch: str) -> str:
    """A rule restricted to one branch's customers."""
    return f"branch_id = {_quote(branch)} AND ({rule})"


def without_branches(rule: str, branches: Sequence[str]) -> str:
    """A rule for every customer but those of ``branches``."""
    return f"({rule}) AND branch_id NOT IN ({', '.join(_quote(b) for b in sorted(branches))})"


@dataclass(frozen=True)
class Live:
    """A version in force: the latest approved version of a strategy (branch None) or of one branch's variant."""

    strategy_id: str
    branch_id: str | None
    version: int
    definition: Mapping[str, Any]


def latest_approved(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Of version rows (strategy_id, branch_id, version, status ...), the newest approved per strategy x branch."""
    best: dict[tuple[str, str | None], Mapping[str, Any]] = {}
    for r in rows:
        if r["status"] != LIVE:
            continue
        key = (r["strategy_id"], r["branch_id"])
        if key not in best or r["version"] > best[key]["version"]:
            best[key] = r
    return [best[k] for k in sorted(best, key=lambda k: (k[0], k[1] or ""))]


def stamp(live: Sequence[Live]) -> str:
    """What is in force, as text (``s@3,s/B01@5``): empty when the YAML alone is live."""
    return ",".join(f"{v.strategy_id}{'/' + v.branch_id if v.branch_id else ''}@{v.version}" for v in live)


def live_map(baseline: Mapping[str, Any], live: Sequence[Live]) -> dict[str, Any]:
    """The strategies.yaml data with each strategy replaced by its approved version and each approved branch
    variant added after its strategy (restricted to its branch; the strategy excluding that branch).

    A head-office version of a strategy the YAML does not have is added at the end (a new strategy)."""
    data = copy.deepcopy(dict(baseline))
    strategies: list[dict[str, Any]] = [dict(s) for s in data.get("strategies") or []]
    index = {s.get("id"): i for i, s in enumerate(strategies)}
    for v in live:
        if v.branch_id is None:
            body = {**copy.deepcopy(dict(v.definition)), "id": v.strategy_id}
            if v.strategy_id in index:
                strategies[index[v.strategy_id]] = body
            else:
                index[v.strategy_id] = len(strategies)
                strategies.append(body)
    variants: dict[str, list[Live]] = {}
    for v in live:
        if v.branch_id is not None:
            variants.setdefault(v.strategy_id, []).append(v)
    out: list[dict[str, Any]] = []
    for s in strategies:
        own = variants.get(s.get("id"), [])
        if own:
            s = dict(s)
            branches = [v.branch_id for v in own if v.branch_id]
            s["audience"] = without_branches(str(s["audience"]), branches)
            if s.get("fallback_audience"):
                s["fallback_audience"] = without_branches(str(s["fallback_audience"]), branches)
        out.append(s)
        out += [_variant(v) for v in sorted(own, key=lambda v: v.branch_id or "")]
    for sid in sorted(set(variants) - set(index)):   # a variant of a strategy head office has since removed
        out += [_variant(v) for v in sorted(variants[sid], key=lambda v: v.branch_id or "")]
    data["strategies"] = out
    return data


def _variant(v: Live) -> dict[str, Any]:
    """A branch variant as the live map's strategy: its own id, its rules restricted to its branch."""
    assert v.branch_id is not None
    body = copy.deepcopy(dict(v.definition))
    body["id"] = variant_id(v.strategy_id, v.branch_id)
    body["audience"] = only_branch(str(body.get("audience", "false")), v.branch_id)
    if body.get("fallback_audience"):
        body["fallback_audience"] = only_branch(str(body["fallback_audience"]), v.branch_id)
    return body
