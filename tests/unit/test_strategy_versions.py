"""The strategy versions' pure rules: the state machine, maker-checker, the diff and the live map."""

from __future__ import annotations

import pytest

from lifeloop.data.access import PermissionDenied, Principal, parse_grant
from lifeloop.strategy.versions import (
    Live,
    VersionError,
    check_checker,
    diff,
    latest_approved,
    live_map,
    may_edit,
    may_see,
    transition,
)

BASE = {"thresholds": {"x": 1}, "strategies": [{"id": "a", "audience": "age > 30", "holdout": 0.1},
                                               {"id": "b", "audience": "true", "holdout": 0.2}]}


def p(*roles, user="u"):
    return Principal(user, user, tuple(parse_grant(r) for r in roles))


def test_only_the_allowed_transitions_happen_and_a_refusal_says_what_is_possible():
    assert transition("draft", "submit", strategy="a", version=1) == "submitted"
    assert transition("submitted", "approve", strategy="a", version=1) == "approved"
    assert transition("submitted", "reject", strategy="a", version=1) == "rejected"
    with pytest.raises(VersionError, match="is approved: it cannot be submitted"):
        transition("approved", "submit", strategy="a", version=1)
    with pytest.raises(VersionError) as e:
        transition("draft", "approve", strategy="a", version=3)
    assert "edited, submitted" in e.value.hint


def test_the_checker_is_an_approver_and_never_the_author():
    check_checker(p("approver", user="chk"), "ana", "a", 1)
    with pytest.raises(PermissionDenied, match="cannot also be its checker"):
        check_checker(p("approver", user="ana"), "ana", "a", 1)
    with pytest.raises(PermissionDenied):
        check_checker(p("analyst", user="chk"), "ana", "a", 1)


def test_head_office_edits_anything_a_branch_manager_their_branchs_variants_and_an_rm_nothing():
    assert may_edit(p("analyst"), None) and may_edit(p("admin"), "B02")
    bm = p("branch_manager=B01")
    assert may_edit(bm, "B01") and not may_edit(bm, "B02") and not may_edit(bm, None)
    assert not may_edit(p("rm=RM001"), "B01") and not may_edit(p("approver"), None)
    assert may_see(bm, None) and may_see(bm, "B01") and not may_see(bm, "B02")
    assert may_see(p("approver"), "B02") and not may_see(p("rm=RM001"), None)


def test_the_diff_is_a_unified_diff_of_the_texts():
    assert diff("a: 1\nb: 2\n", "a: 1\nb: 3\n", "s v0", "s v1") == \
        "--- s v0\n+++ s v1\n@@ -1,2 +1,2 @@\n a: 1\n-b: 2\n+b: 3\n"
    assert diff("x\n", "x\n", "l", "r") == ""


def test_the_live_map_takes_the_newest_approved_version_and_a_variant_splits_the_customers_by_branch():
    rows = [{"strategy_id": "a", "branch_id": None, "version": v, "status": s} for v, s in
            ((1, "approved"), (2, "approved"), (3, "submitted"), (4, "rejected"))]
    rows.append({"strategy_id": "a", "branch_id": "B01", "version": 5, "status": "approved"})
    assert [(r["version"], r["branch_id"]) for r in latest_approved(rows)] == [(2, None), (5, "B01")]
    live = [Live("a", None, 2, {"id": "a", "audience": "age > 40", "holdout": 0.5}),
            Live("a", "B01", 5, {"id": "a", "audience": "age > 20", "holdout": 0.1}),
            Live("new", None, 1, {"id": "new", "audience": "true", "holdout": 0})]
    out = live_map(BASE, live)
    assert [s["id"] for s in out["strategies"]] == ["a", "a__b01", "b", "new"]
    a, variant = out["strategies"][0], out["strategies"][1]
    assert (a["audience"], a["holdout"]) == ("(age > 40) AND branch_id NOT IN ('B01')", 0.5)
    assert variant["audience"] == "branch_id = 'B01' AND (age > 20)"
    assert out["thresholds"] == {"x": 1} and BASE["strategies"][0]["audience"] == "age > 30"   # not changed
    assert live_map(BASE, []) == BASE
