"""The pure access rules: role grants, the permission matrix, scopes and the masking role a principal views with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeloop.data.access import (
    HEAD_OFFICE,
    PERMISSIONS,
    ROLE_NAMES,
    Grant,
    PermissionDenied,
    Principal,
    Scope,
    describe,
    not_visible,
    parse_grant,
)
from lifeloop.data.masking import AccessError
from lifeloop.store.ops import models


def test_the_database_and_the_rules_know_the_same_roles_and_every_permission_names_known_roles():
    assert models.ROLE_NAMES == ROLE_NAMES
    assert all(holders <= set(ROLE_NAMES) and holders for holders in PERMISSIONS.values())
    assert PERMISSIONS["users.manage"] == {"admin"} and PERMISSIONS["approvals.decide"] == {"approver"}


def test_grants_are_parsed_with_clear_errors():
    assert parse_grant("rm=RM001") == Grant("rm", "RM001") and str(parse_grant(" admin ")) == "admin"
    with pytest.raises(AccessError, match="unknown role 'admn'; did you mean 'admin'"):
        parse_grant("admn")
    with pytest.raises(AccessError, match="role rm needs the rm_id it is for") as err:
        parse_grant("rm")
    assert "rm=RM001" in err.value.hint
    with pytest.raises(AccessError, match="role analyst is not for one branch or book"):
        parse_grant("analyst=B01")


def test_a_permission_is_refused_naming_the_roles_that_hold_it():
    rm = Principal("wang", "Wang", (Grant("rm", "RM1"),))
    with pytest.raises(PermissionDenied, match=r"user wang may not dispatch \(roles: rm\)") as err:
        rm.require("dispatch", "dispatch")
    assert err.value.exit_code == 2 and "admin or analyst" in err.value.hint
    assert describe(rm)["roles"] == ["rm=RM1"] and "dispatch" not in describe(rm)["permissions"]


def test_scopes_combine_the_roles_that_hold_the_permission():
    p = Principal("x", "x", (Grant("rm", "RM1"), Grant("branch_manager", "B2"), Grant("approver")))
    assert p.scope("customer.read") == Scope(False, frozenset({"RM1"}), frozenset({"B2"}))
    assert p.scope("consent.change") == Scope(False, frozenset({"RM1"}), frozenset())   # a manager may not change
    assert p.scope("customer.read").covers("RM9", "B2") and not p.scope("customer.read").covers("RM9", "B1")
    assert p.scope("users.manage").empty


def test_the_viewer_is_the_most_revealing_role_covering_the_customer_plus_what_a_grant_unmasks():
    p = Principal("x", "x", (Grant("analyst"), Grant("rm", "RM1")))
    assert p.viewer("RM1", "B1").name == "rm" and p.viewer("RM2", "B1").name == "analyst"
    assert p.viewer("RM1", "B1").unmasked == p.viewer("RM1", "B1", ["nothing_known"]).unmasked
    officer = Principal("c", "c", (Grant("compliance"),))
    assert officer.viewer("RM1", "B1").unmasked == frozenset()           # masked until unmasked
    assert officer.viewer("RM1", "B1", ["id_number", "mobile"]).unmasked == {"id_number", "mobile"}


def test_not_yours_and_unknown_read_alike():
    a, b = not_visible("customer", "C2", ["C1"]), not_visible("customer", "C9", ["C1"])
    assert (type(a), a.message.replace("C2", "?"), a.hint) == (type(b), b.message.replace("C9", "?"), b.hint)


grants = st.lists(st.one_of(st.sampled_from([Grant(r) for r in ("admin", "analyst", "compliance", "approver")]),
                            st.builds(Grant, st.just("rm"), st.sampled_from(["RM1", "RM2", "RM3"])),
                            st.builds(Grant, st.just("branch_manager"), st.sampled_from(["B1", "B2"]))),
                  max_size=4)
customers = st.tuples(st.sampled_from(["RM1", "RM2", "RM3", None]), st.sampled_from(["B1", "B2", None]))


@given(grants, grants, customers, st.sampled_from(sorted(PERMISSIONS)))
def test_more_roles_never_reach_fewer_customers_and_only_head_office_reaches_all(first, more, customer, permission):
    small = Principal("x", "x", tuple(first))
    big = Principal("x", "x", tuple(first + more))
    if small.scope(permission).covers(*customer):
        assert big.scope(permission).covers(*customer)
    if small.scope(permission).all:
        assert any(g.role in HEAD_OFFICE and g.role in PERMISSIONS[permission] for g in first)
    assert small.can(permission) <= big.can(permission)
