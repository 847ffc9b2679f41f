"""The consent and approve commands: thin, audited, identity from the signed-in user (LIFELOOP_USER +
LIFELOOP_TOKEN), mistakes as 'Error: ...'."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import sqlalchemy as sa

from lifeloop.context import Context
from lifeloop.execution.dispatch import enqueue_lists
from lifeloop.store.ops.approvals import Rules
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import AuditEntry, Dispatch
from tests.cli_runner import lifeloop

D = dt.date(2026, 3, 2)


TOKENS: dict[str, str] = {}


def new_workspace(ws):
    """A workspace with three users: agent7 (compliance), alice (analyst and approver), bob (approver)."""
    with Context.init(ws) as ctx:
        for name, roles in (("agent7", ["compliance"]), ("alice", ["analyst", "approver"]), ("bob", ["approver"])):
            TOKENS[name] = ctx.add_user(name, roles=roles)[1]
    return ws


def run(ws, *args, operator="alice", process=False):
    """The command as ``operator``: in this process (tests/cli_runner.py), or in its own with ``process=True``."""
    env = {**os.environ, "LIFELOOP_USER": operator, "LIFELOOP_TOKEN": TOKENS[operator], "LIFELOOP_WORKSPACE": str(ws)}
    env.pop("LIFELOOP_DATABASE_URL", None)
    return lifeloop(*args, env=env, process=process)


def test_withdraw_then_show_through_the_command_line_is_audited_as_the_operator(tmp_path):
    ws = new_workspace(tmp_path / "bank")
    done = run(ws, "consent", "withdraw", "C000000001", "--channel", "all", "--purpose", "marketing",
               "--source", "customer", "--reason", "asked on the phone", operator="agent7", process=True)
    assert done.returncode == 0, done.stderr
    assert "marketing consent withdrawn for every channel" in done.stdout and "agent7" in done.stdout
    shown = run(ws, "consent", "show", "C000000001", "--json")
    assert shown.returncode == 0, shown.stderr
    assert '"reason": "marketing consent withdrawn for every channel' in shown.stdout
    analyst = run(ws, "consent", "grant", "C000000001", "--channel", "sms", "--source", "x", "--reason", "y")
    assert analyst.returncode == 2 and "user alice may not change consent" in analyst.stderr   # an analyst may not
    bad = run(ws, "consent", "grant", "C000000001", "--channel", "smss", "--source", "x", "--reason", "y",
              operator="agent7")
    assert bad.returncode == 1 and "Error:" in bad.stderr and "did you mean 'sms'" in bad.stderr
    with Context(ws) as ctx, unit_of_work(ctx.ops()) as s:
        entry = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "consent.withdraw")).one()
        assert (entry.actor, entry.target_id) == ("agent7", "C000000001")


def test_the_person_who_dispatched_cannot_approve_but_someone_else_can_from_the_command_line(tmp_path):
    ws = tmp_path / "bank"
    rows = [dict(as_of=D, customer_id=f"C{i}", strategy="big", wave="w", group="treated", status="contact",
                 channel="sms", send_at=None, purpose="service", script_id=None, script_key=None, offer=None,
                 priority=1, rm_id=None) for i in range(3)]
    new_workspace(ws)
    with Context(ws) as ctx:
        enqueue_lists(ctx.ops(), pa.Table.from_pylist(rows), approval=Rules(max_per_strategy=2), operator="alice")
    listed = run(ws, "approve", "list")
    assert "the send of strategy big on 2026-03-02: 3 contacts (limit 2), requested by alice" in listed.stdout
    own = run(ws, "approve", "send", "2026-03-02", "--reason", "fine", operator="alice")
    assert own.returncode == 1 and "four eyes" in own.stderr and "Traceback" not in own.stderr
    other = run(ws, "approve", "send", "2026-03-02", "--strategy", "big", "--reason", "signed off", operator="bob")
    assert other.returncode == 0, other.stderr
    assert "released 3 contacts" in other.stdout
    assert "no approval is pending" in run(ws, "approve", "list").stdout
    with Context(ws) as ctx, unit_of_work(ctx.ops()) as s:
        assert set(s.scalars(sa.select(Dispatch.status))) == {"pending"}
