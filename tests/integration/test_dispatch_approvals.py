"""The approval rule holds in the real dispatch path: `Context.dispatch` reads channels.yaml and holds the day."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lifeloop.context import Context
from lifeloop.data.access import Grant, PermissionDenied, Principal
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Approval, Dispatch


@pytest.mark.slow
def test_a_dispatch_above_the_configured_size_sends_nothing_until_someone_else_approves(tmp_path):
    ws = tmp_path / "ws"
    ctx = Context.init(ws)
    sim = ctx.simulate(ws / "extracts", customers=400, days=60, seed=5)
    ctx.ingest(ws / "extracts", as_of=sim.as_of)
    path = ws / "config" / "channels.yaml"
    # a simulated day is dispatched as if it were 19:00 on it (the real clock would find it long expired)
    path.write_text(path.read_text(encoding="utf-8").replace("max_contacts_per_day: 20000", "max_contacts_per_day: 1")
                    + 'replay_at: "19:00"\n', encoding="utf-8")
    ctx.close()
    # who dispatches and who approves are signed-in principals: an analyst, and an approver
    with Context(ws, principal=Principal("alice", "Alice", (Grant("analyst"),))) as alice, \
            Context(ws, principal=Principal("bob", "Bob", (Grant("approver"),))) as bob:
        alice.run(sim.as_of, steps=["features", "lifecycle", "segments", "clusters", "audiences", "plan", "dispatch"])
        first = alice.dispatch(sim.as_of)            # drains again: still nothing of the day
        with unit_of_work(alice.ops()) as s:
            statuses = set(s.scalars(sa.select(Dispatch.status).where(Dispatch.as_of == sim.as_of)))
            request = s.scalars(sa.select(Approval)).one()
        assert first.sent == 0 and "sent" not in statuses and "held" in statuses
        assert (request.kind, request.requested_by) == ("day_volume", "alice")
        with pytest.raises(PermissionDenied, match="approve or reject a send"):   # an analyst is no approver
            alice.decide_approval(sim.as_of, approve=True, reason="mine")
        assert bob.operator == "bob"
        released = bob.decide_approval(sim.as_of, approve=True, reason="signed off")["released"]
        after = alice.dispatch(sim.as_of)
        assert released > 0 and after.sent > 0 and after.sent + after.blocked + after.failed == released
