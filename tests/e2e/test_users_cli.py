"""Signing in and acting as a user from the command line (Typer's CliRunner): init makes the owner the first
administrator, `users` manages users, `whoami` says who you are, roles come from the user and never from flags,
`unmask` and `worklist --export` are scoped and audited."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.context import Context
from lifeloop.data.access import PermissionDenied, SignInRefused
from lifeloop.errors import NotFoundError
from lifeloop.settings import os_user
from lifeloop.store.ops import tasks
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import AuditEntry
from tests.factories import BANK_AS_OF, canonical_bank, write_canonical

TOKEN = re.compile(r"only its hash is kept\):\n  (\S+)\n")


def cli(ws, *args, user=None, token=None):
    """Run ``lifeloop -w WS ARGS`` in-process, signed in by token when ``user`` is given, else as the OS user."""
    env = {"LIFELOOP_USER": user, "LIFELOOP_TOKEN": token, "LIFELOOP_DATABASE_URL": None, "COLUMNS": "200"}
    return CliRunner().invoke(app, ["-w", str(ws), *args], env=env)


def token_in(output: str) -> str:
    found = TOKEN.findall(output)
    assert found, output
    return found[-1]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("users-cli")
    ws = root / "ws"
    done = CliRunner().invoke(app, ["init", str(ws)], env={"LIFELOOP_DATABASE_URL": None})
    assert done.exit_code == 0, done.output
    me = os_user()
    assert f"First administrator: {me}" in done.output
    bank = canonical_bank()
    bank["customers"][0].update(mobile="13812341234", id_number="110101196005011234")
    assert cli(ws, "ingest", str(write_canonical(root / "extracts", bank))).exit_code == 0
    with Context(ws) as ctx, unit_of_work(ctx.ops()) as s:
        tasks.create_task(s, rm_id="RM1", customer_id="C1", title="call C1", due_on=BANK_AS_OF, priority=9)
    return {"ws": ws, "admin": me, "admin_token": token_in(done.output)}


def test_whoami_by_os_user_and_by_token(ws):
    mine = cli(ws["ws"], "whoami")
    assert mine.exit_code == 0 and f"{ws['admin']} (workspace owner" in mine.output
    assert "signed in by os_user" in mine.output and "roles: admin" in mine.output and "users.manage" in mine.output
    by_token = cli(ws["ws"], "whoami", "--json", user=ws["admin"], token=ws["admin_token"])
    assert json.loads(by_token.output)["signed_in_by"] == "token"
    bad = cli(ws["ws"], "whoami", user=ws["admin"], token="not-the-token")
    assert isinstance(bad.exception, SignInRefused) and bad.exception.exit_code == 2
    unknown = cli(ws["ws"], "whoami", user="nobody", token="not-the-token")
    assert str(unknown.exception) == str(bad.exception)      # the same words: nothing says who exists


def test_a_bad_token_exits_2_with_an_error_and_no_traceback(ws):
    done = subprocess.run([sys.executable, "-m", "lifeloop.cli", "-w", str(ws["ws"]), "whoami"], capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "LIFELOOP_USER": "x",
                                                       "LIFELOOP_TOKEN": "y"})
    assert done.returncode == 2 and "Error: sign-in refused" in done.stderr and "Traceback" not in done.stderr


def test_users_are_managed_by_an_administrator_only_and_roles_never_come_from_flags(ws, tmp_path):
    w = ws["ws"]
    added = cli(w, "users", "add", "wang", "--role", "rm=RM1", "--display-name", "王芳")
    assert added.exit_code == 0, added.output
    assert "added wang (rm=RM1)" in added.output
    wang = token_in(added.output)
    assert wang not in (w / "ops.db").read_bytes().decode("latin-1")       # only its hash is stored
    typo = cli(w, "users", "add", "li", "--role", "analist")
    assert isinstance(typo.exception, Exception) and "did you mean 'analyst'" in str(typo.exception)
    me = cli(w, "whoami", user="wang", token=wang)
    assert "wang (王芳), signed in by token" in me.output and "roles: rm=RM1" in me.output
    for args in (["users", "list"], ["users", "add", "eve", "--role", "admin"], ["users", "grant", "wang", "admin"]):
        refused = cli(w, *args, user="wang", token=wang)
        assert isinstance(refused.exception, PermissionDenied) and refused.exception.exit_code == 2, args
    # the old self-declared flags are gone: Typer refuses them
    for flag in (["--role", "admin"], ["--rm", "RM1"], ["--reason", "x"]):
        old = cli(w, "customer", "C1", *flag, user="wang", token=wang)
        assert old.exit_code == 2 and f"No such option: {flag[0]}" in old.output
    assert "lifeloop whoami" in cli(w, "customer", "--help").output
    listed = cli(w, "users", "list", "--json")
    assert {u["user"]: u["roles"] for u in json.loads(listed.output)} == {ws["admin"]: ["admin"], "wang": ["rm=RM1"]}


def test_an_rm_sees_their_customer_unmasks_the_id_number_and_exports_their_worklist(ws, tmp_path):
    w = ws["ws"]
    added = cli(w, "users", "add", "zhou", "--role", "rm=RM1")
    zhou = token_in(added.output)
    own = json.loads(cli(w, "customer", "C1", "--json", user="zhou", token=zhou).output)
    assert own["attributes"]["name"] == "李娜" and "*" in own["attributes"]["id_number"]
    other = cli(w, "customer", "C2", user="zhou", token=zhou)
    missing = cli(w, "customer", "c2", user="zhou", token=zhou)
    assert isinstance(other.exception, NotFoundError)
    assert str(other.exception).replace("C2", "<id>") == str(missing.exception).replace("c2", "<id>")
    # the admin sees the profile masked: no more "--reason shows everything"
    hq = json.loads(cli(w, "customer", "C1", "--json").output)
    assert hq["attributes"]["name"] != "李娜" and hq["access"]["unmasked"] == []
    done = cli(w, "unmask", "C1", "--reason", "KYC refresh 12", "--minutes", "5", user="zhou", token=zhou)
    assert done.exit_code == 0, done.output
    assert "zhou may see id_number of C1 unmasked until" in done.output
    shown = json.loads(cli(w, "customer", "C1", "--json", user="zhou", token=zhou).output)
    assert shown["access"]["unmasked"] == ["id_number"] and shown["attributes"]["id_number"] == "110101196005011234"
    out = tmp_path / "mine.csv"
    exported = cli(w, "worklist", "--export", str(out), user="zhou", token=zhou)
    assert exported.exit_code == 0, exported.output
    assert "RM1: 1 open tasks" in exported.output and "audited" in exported.output
    assert "C1" in out.read_text(encoding="utf-8")
    stranger = cli(w, "worklist", "RM2", "--export", str(tmp_path / "x.csv"), user="zhou", token=zhou)
    assert isinstance(stranger.exception, NotFoundError) and not (tmp_path / "x.csv").exists()
    with Context(w) as ctx, unit_of_work(ctx.ops()) as s:
        actions = s.execute(sa.select(AuditEntry.actor, AuditEntry.action, AuditEntry.target_id)
                            .where(AuditEntry.actor == "zhou").order_by(AuditEntry.id)).all()
    assert [(a, t) for _, a, t in actions if a != "user.sign_in"] == [
        ("access.refused", "C2"), ("access.refused", "c2"), ("customer.unmask", "C1"),
        ("customer.view_unmasked", "C1"), ("worklist.export", "RM1"), ("access.refused", "RM2")]
    assert ("zhou", "user.sign_in", "zhou") in actions


def test_a_disabled_user_can_no_longer_sign_in(ws):
    w = ws["ws"]
    token = token_in(cli(w, "users", "add", "temp", "--role", "analyst").output)
    assert cli(w, "whoami", user="temp", token=token).exit_code == 0
    assert "temp is disabled" in cli(w, "users", "disable", "temp").output
    assert isinstance(cli(w, "whoami", user="temp", token=token).exception, SignInRefused)
    new = token_in(cli(w, "users", "reset-token", "temp").output)
    assert isinstance(cli(w, "whoami", user="temp", token=new).exception, SignInRefused)   # still disabled
    assert "temp (temp): analyst (disabled)" in cli(w, "users", "list").output
    assert dt.date.today() >= BANK_AS_OF
