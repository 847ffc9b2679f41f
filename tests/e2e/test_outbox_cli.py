"""``lifeloop outbox unknown`` lists contacts of unknown outcome; ``resolve`` records a decision, audited."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from lifeloop.context import Context
from lifeloop.store.ops import audit, contacts
from lifeloop.store.ops.contacts import NewContact
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Dispatch
from tests.cli_runner import lifeloop

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def run(*args, process=False):
    """The command in this process (tests/cli_runner.py); ``process=True``: in its own, as a user runs it."""
    return lifeloop(*args, process=process)


def workspace_with_unknown_contacts(tmp_path):
    ws = tmp_path / "bank"
    Context.init(ws).close()
    with Context(ws) as ctx, unit_of_work(ctx.ops()) as s:
        new = [NewContact(as_of=T0.date(), customer_id=f"C{i}", strategy_id="honeymoon", wave="d1", channel="sms")
               for i in range(3)]
        contacts.enqueue(s, contacts=new, now=T0)
        for item in contacts.claim_batch(s, worker="w", limit=2, now=T0):
            contacts.mark_sending(s, claim_token=item.claim_token, dispatch_ids=[item.id], now=T0)
            contacts.mark_unknown(s, dispatch_id=item.id, claim_token=item.claim_token, now=T0,
                                  reason="timeout: ReadTimeout after the request was written")
        keys = dict(s.execute(sa.select(Dispatch.customer_id, Dispatch.idempotency_key)).all())
    return ws, keys


def rows(ws):
    with Context(ws) as ctx, ctx.ops()() as s:
        return dict(s.execute(sa.select(Dispatch.customer_id, Dispatch.status)).all())


def test_an_operator_lists_unknown_contacts_and_resolves_one_as_sent_with_an_audited_reason(tmp_path):
    ws, keys = workspace_with_unknown_contacts(tmp_path)
    listed = run("-w", str(ws), "outbox", "unknown", process=True)
    assert listed.returncode == 0, listed.stderr
    assert "2 contacts of unknown outcome" in listed.stdout and keys["C0"] in listed.stdout
    assert "ReadTimeout after the request was written" in listed.stdout and "d " in listed.stdout  # age in days
    done = run("-w", str(ws), "outbox", "resolve", keys["C0"][:12], "sent", "--reason", "provider report 03-02")
    assert done.returncode == 0, done.stderr
    assert f"contact {keys['C0']} (C0, sms): recorded as sent" in done.stdout
    closed = run("-w", str(ws), "outbox", "resolve", keys["C1"], "not-sent", "--reason", "provider has no record")
    assert closed.returncode == 0 and "closed as not sent" in closed.stdout
    assert rows(ws) == {"C0": "sent", "C1": "failed", "C2": "pending"}
    with Context(ws) as ctx, ctx.ops()() as s:
        entries = audit.entries(s, target_type="dispatch")
    assert [(e.action, e.reason, e.details["resolution"]) for e in entries] == [
        ("outbox.resolve", "provider report 03-02", "sent"), ("outbox.resolve", "provider has no record", "not-sent")]
    assert "no contacts of unknown outcome" in run("-w", str(ws), "outbox", "unknown").stdout


def test_resolving_a_contact_that_is_not_unknown_or_a_wrong_outcome_is_an_error_and_changes_nothing(tmp_path):
    ws, keys = workspace_with_unknown_contacts(tmp_path)
    before = rows(ws)
    pending = run("-w", str(ws), "outbox", "resolve", keys["C2"], "sent", "--reason", "x")
    assert pending.returncode == 1 and "is pending, not unknown" in pending.stderr
    assert "Traceback" not in pending.stderr
    wrong = run("-w", str(ws), "outbox", "resolve", keys["C0"], "delivered", "--reason", "x")
    assert wrong.returncode == 1 and "write sent or not-sent" in wrong.stderr
    no_reason = run("-w", str(ws), "outbox", "resolve", keys["C0"], "sent")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    assert rows(ws) == before
    with Context(ws) as ctx, ctx.ops()() as s:
        assert audit.entries(s, target_type="dispatch") == []
