"""Users, roles and sign-in in the operations database, on SQLite and PostgreSQL: every change and every sign-in
audited, tokens only as hashes, administrators only, the first user by the workspace owner only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa

from lifeloop.context import Context
from lifeloop.data.access import Grant, PermissionDenied, Principal, SignInRefused
from lifeloop.data.masking import AccessError
from lifeloop.settings import Credentials
from lifeloop.store.ops import principals
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import AuditEntry, RoleGrant, User
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def audit_of(session, action):
    return [(e.actor, e.target_id, e.result, e.details) for e in
            session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))]


# ------------------------------------------------------------------------------------------------ secrets
def test_a_token_is_kept_as_a_salted_scrypt_hash_that_only_the_same_token_matches():
    stored = principals.hash_secret("s3cret")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1") and len(bytes.fromhex(salt)) == 16
    # the stdlib computes the same digest from the stored salt: the hash is scrypt, not something home-made
    assert digest == hashlib.scrypt(b"s3cret", salt=bytes.fromhex(salt), n=16384, r=8, p=1, dklen=32).hex()
    assert "s3cret" not in stored and principals.hash_secret("s3cret") != stored     # a fresh salt each time
    assert principals.verify_secret("s3cret", stored)
    assert not principals.verify_secret("s3creT", stored) and not principals.verify_secret("", stored)
    assert not principals.verify_secret("s3cret", "md5$00") and not principals.verify_secret("s3cret", "garbage")


# ------------------------------------------------------------------------------------------------ the store
def test_users_are_added_granted_revoked_disabled_and_listed_and_every_change_is_audited(session):
    alice, token = principals.add_user(session, user_id="alice", display_name="Alice Wang",
                                       grants=[Grant("analyst"), Grant("rm", "RM001")], os_user="awang",
                                       actor="root", now=T0)
    assert token not in alice.secret_hash and principals.verify_secret(token, alice.secret_hash)
    principals.grant_role(session, user_id="alice", grant=Grant("branch_manager", "B01"), actor="root", now=T0)
    principals.revoke_role(session, user_id="alice", grant=Grant("analyst"), actor="root", now=T0)
    principals.add_user(session, user_id="root", display_name=None, grants=[Grant("admin")], os_user=None,
                        actor="root", now=T0)
    principals.disable_user(session, user_id="alice", actor="root", now=T0 + dt.timedelta(hours=1))
    listed = principals.list_users(session)
    assert [(u["user"], u["active"], u["roles"], u["os_user"]) for u in listed] == [
        ("alice", False, ["branch_manager=B01", "rm=RM001"], "awang"), ("root", True, ["admin"], None)]
    assert listed[0]["updated_at"] == T0 + dt.timedelta(hours=1) and "secret_hash" not in listed[0]
    assert audit_of(session, "user.add")[0] == ("root", "alice", "ok",
                                                {"roles": ["analyst", "rm=RM001"], "os_user": "awang"})
    assert audit_of(session, "user.grant") == [("root", "alice", "ok", {"role": "branch_manager=B01"})]
    assert audit_of(session, "user.revoke") == [("root", "alice", "ok", {"role": "analyst"})]
    assert audit_of(session, "user.disable") == [("root", "alice", "ok", None)]
    # no token, plain or otherwise, in any audit entry
    assert token not in str(session.scalars(sa.select(AuditEntry.details)).all())


def test_mistakes_are_refused_before_anything_is_written(session):
    principals.add_user(session, user_id="root", display_name=None, grants=[Grant("admin")], os_user="root",
                        actor="root", now=T0)
    before = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    with pytest.raises(AccessError, match="user name '../x' is not allowed"):
        principals.add_user(session, user_id="../x", display_name=None, grants=[Grant("analyst")], os_user=None,
                            actor="root")
    with pytest.raises(AccessError, match="already exists"):
        principals.add_user(session, user_id="root", display_name=None, grants=[Grant("analyst")], os_user=None,
                            actor="root")
    with pytest.raises(AccessError, match="OS user 'root' is already mapped to user root"):
        principals.add_user(session, user_id="bob", display_name=None, grants=[Grant("analyst")], os_user="root",
                            actor="root")
    with pytest.raises(AccessError, match="needs at least one role"):
        principals.add_user(session, user_id="bob", display_name=None, grants=[], os_user=None, actor="root")
    with pytest.raises(AccessError, match="does not hold analyst"):
        principals.revoke_role(session, user_id="root", grant=Grant("analyst"), actor="root")
    with pytest.raises(PermissionDenied, match="last active administrator"):
        principals.revoke_role(session, user_id="root", grant=Grant("admin"), actor="root")
    with pytest.raises(PermissionDenied, match="last active administrator"):
        principals.disable_user(session, user_id="root", actor="root")
    with pytest.raises(Exception, match="no user 'rooot'; did you mean 'root'"):
        principals.grant_role(session, user_id="rooot", grant=Grant("analyst"), actor="root")
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == before
    assert session.scalars(sa.select(User.id)).all() == ["root"]


def test_the_database_refuses_a_scoped_role_without_its_scope(session):
    principals.add_user(session, user_id="root", display_name=None, grants=[Grant("admin")], os_user=None,
                        actor="root", now=T0)
    session.add(RoleGrant(user_id="root", role="rm", scope="", granted_at=T0, granted_by="x"))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_sign_in_by_token_good_bad_disabled_and_unknown_is_audited_with_host_and_process(session):
    _, token = principals.add_user(session, user_id="alice", display_name=None, grants=[Grant("rm", "RM001")],
                                   os_user=None, actor="root", now=T0)
    principals.add_user(session, user_id="root", display_name=None, grants=[Grant("admin")], os_user=None,
                        actor="root", now=T0)
    me = principals.sign_in(session, user_id="alice", token=token, os_user="whoever", allow_os_users=True, now=T0)
    assert me == Principal("alice", "alice", (Grant("rm", "RM001"),), "token")
    assert principals.sign_in(session, user_id="alice", token=token + "x", os_user=None, allow_os_users=True) is None
    assert principals.sign_in(session, user_id="nobody", token=token, os_user=None, allow_os_users=True) is None
    principals.disable_user(session, user_id="alice", actor="root")
    assert principals.sign_in(session, user_id="alice", token=token, os_user=None, allow_os_users=True) is None
    entries = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.sign_in")
                              .order_by(AuditEntry.id)).all()
    assert [(e.actor, e.result, (e.details or {}).get("why")) for e in entries] == [
        ("alice", "ok", None), ("alice", "refused", "bad token"), ("nobody", "refused", "unknown user"),
        ("alice", "refused", "disabled")]
    assert all(e.host and e.client.startswith("pid ") for e in entries)


def test_an_os_user_signs_in_only_when_mapped_active_and_allowed(session):
    principals.add_user(session, user_id="wang", display_name=None, grants=[Grant("analyst")], os_user="wfang",
                        actor="root", now=T0)
    assert principals.sign_in(session, user_id=None, token=None, os_user="wfang", allow_os_users=True).method == \
        "os_user"
    assert principals.sign_in(session, user_id=None, token=None, os_user="wfang", allow_os_users=False) is None
    assert principals.sign_in(session, user_id=None, token=None, os_user="stranger", allow_os_users=True) is None
    assert [d["why"] for *_, d in audit_of(session, "user.sign_in")[1:]] == [
        "no credentials (LIFELOOP_USER and LIFELOOP_TOKEN not set; OS-user sign-in is off)", "OS user not mapped"]


def test_an_unmask_grant_holds_until_it_expires(session):
    officer = Principal("cmp", "compliance", (Grant("compliance"),))
    principals.grant_unmask(session, principal=officer, customer_id="C1", fields=["id_number", "mobile"],
                            reason="complaint 117", minutes=15, now=T0)
    fields = dict(user_id="cmp", customer_id="C1")
    assert principals.unmasked_fields(session, **fields, now=T0 + dt.timedelta(minutes=14)) == ["id_number", "mobile"]
    assert principals.unmasked_fields(session, **fields, now=T0 + dt.timedelta(minutes=15)) == []
    assert principals.unmasked_fields(session, **fields, now=T0 - dt.timedelta(minutes=1)) == []
    assert principals.unmasked_fields(session, user_id="other", customer_id="C1", now=T0) == []
    (entry,) = audit_of(session, "customer.unmask")
    assert entry[:3] == ("cmp", "C1", "ok") and entry[3]["until"] == "2026-03-02T09:15:00+00:00"


# ------------------------------------------------------------------------------------------------ through Context
@pytest.fixture
def ws(tmp_path, database_url, ops_db, monkeypatch):    # ops_db: migrated (PostgreSQL is never auto-migrated)
    monkeypatch.setenv("LIFELOOP_DATABASE_URL", database_url)
    monkeypatch.delenv("LIFELOOP_USER", raising=False)
    monkeypatch.delenv("LIFELOOP_TOKEN", raising=False)
    owner = Credentials(os_user="owner")
    with Context.init(tmp_path / "ws", credentials=owner) as ctx:
        assert ctx.bootstrap_token and ctx.principal.user_id == "owner" and ctx.principal.roles == {"admin"}
    return tmp_path / "ws"


def test_init_makes_the_owner_the_first_administrator_and_nobody_can_bootstrap_again(ws):
    with Context(ws, credentials=Credentials(os_user="owner")) as ctx:
        assert ctx.whoami()["roles"] == ["admin"] and ctx.whoami()["signed_in_by"] == "os_user"
        with pytest.raises(PermissionDenied, match="users exist already"):
            ctx.bootstrap_admin("mallory", os_user="owner")
        with unit_of_work(ctx.ops()) as s:
            assert audit_of(s, "user.add")[0][3]["bootstrap"] is True


def test_the_first_user_must_be_an_admin_mapped_to_the_os_user_running_it(tmp_path, database_url, ops_db,
                                                                        monkeypatch):
    monkeypatch.setenv("LIFELOOP_DATABASE_URL", database_url)
    with Context.init(tmp_path / "ws", credentials=Credentials()) as ctx:    # no OS user: nobody is made admin
        assert ctx.user_count() == 0
    ctx = Context(tmp_path / "ws", credentials=Credentials(os_user="owner"))
    with pytest.raises(PermissionDenied, match="must hold the admin role") as err:
        ctx.bootstrap_admin("owner", os_user="owner", roles=["analyst"])
    with pytest.raises(PermissionDenied, match=r"mapped to the OS user running this \(--os-user owner\)"):
        ctx.bootstrap_admin("boss", os_user="someone-else")
    assert ctx.user_count() == 0 and "--os-user owner" in err.value.hint
    row, _ = ctx.bootstrap_admin("boss", os_user="owner")
    assert row["roles"] == ["admin"] and ctx.principal.user_id == "boss"
    ctx.close()


def test_only_an_administrator_manages_users_and_a_token_signs_in_until_the_user_is_disabled(ws):
    with Context(ws, credentials=Credentials(os_user="owner")) as admin:
        _, token = admin.add_user("li.na", roles=["rm=RM001", "approver"], display_name="李娜")
    with Context(ws, credentials=Credentials(user="li.na", token=token, os_user="owner")) as lina:
        assert lina.operator == "li.na"       # the token wins over the OS user
        assert lina.whoami()["roles"] == ["approver", "rm=RM001"]
        for attempt in (lambda: lina.add_user("x", roles=["admin"]), lambda: lina.grant_role("li.na", "admin"),
                        lambda: lina.users(), lambda: lina.disable_user("owner")):
            with pytest.raises(PermissionDenied, match="user li.na may not") as refused:
                attempt()
            assert refused.value.exit_code == 2 and "needs the role admin" in refused.value.hint
    with Context(ws, credentials=Credentials(os_user="owner")) as admin:
        assert admin.grant_role("li.na", "analyst")["roles"] == ["analyst", "approver", "rm=RM001"]
        assert admin.revoke_role("li.na", "approver")["roles"] == ["analyst", "rm=RM001"]
        admin.disable_user("li.na")
        assert [u["active"] for u in admin.users()] == [False, True]
    refusals = []
    for creds in (Credentials(user="li.na", token=token), Credentials(user="nobody", token=token),
                  Credentials(user="owner", token="wrong"), Credentials(os_user="stranger")):
        with Context(ws, credentials=creds) as who, pytest.raises(SignInRefused) as refused:
            _ = who.principal
        refusals.append(refused.value)
    # one refusal whatever was wrong: it never says whether the user exists
    assert {(type(e), e.message, e.hint, e.exit_code) for e in refusals} == {
        (SignInRefused, "sign-in refused: no active Lifeloop user matches these credentials", refusals[0].hint, 2)}
    with Context(ws, credentials=Credentials(os_user="owner")) as admin, unit_of_work(admin.ops()) as s:
        actions = [(a, r) for a, r in s.execute(sa.select(AuditEntry.action, AuditEntry.result)
                                                .order_by(AuditEntry.id))]
        assert ("user.disable", "ok") in actions and actions.count(("user.sign_in", "refused")) == 4
        assert actions.count(("access.refused", "refused")) == 4       # li.na's four attempts to manage users


def test_a_bank_can_turn_os_user_sign_in_off(ws):
    path = ws / "lifeloop.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("os_users: true", "os_users: false"), encoding="utf-8")
    with Context(ws, credentials=Credentials(os_user="owner")) as ctx, pytest.raises(SignInRefused) as refused:
        _ = ctx.principal
    assert "OS user" not in refused.value.hint          # the hint no longer offers OS-user sign-in


def test_an_explicit_system_principal_is_never_looked_up_and_names_the_audit_entries(ws):
    system = Principal.system("tests")
    with Context(ws, principal=system, credentials=Credentials(user="x", token="y")) as ctx:
        assert ctx.operator == "system:tests" and ctx.principal.can("users.manage")
        ctx.add_user("bot", roles=["analyst"])
        with unit_of_work(ctx.ops()) as s:
            assert audit_of(s, "user.add")[-1][:2] == ("system:tests", "bot")
    assert dataclasses.replace(system, grants=()).can("run") is False


def test_the_os_user_is_the_effective_uid_and_not_an_environment_variable_anyone_can_set(monkeypatch):
    import os
    import pwd

    monkeypatch.setenv("LOGNAME", "the-administrator")
    monkeypatch.setenv("USER", "the-administrator")
    assert Credentials.from_env().os_user == pwd.getpwuid(os.geteuid()).pw_name != "the-administrator"
