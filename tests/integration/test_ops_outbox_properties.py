"""Property: whatever workers do (claim, send, fail, crash, come back late), the outbox never hands an item
to two live claimers, never sends one twice, and accounts for every item until each is sent or failed."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeloop.store.ops import contacts
from lifeloop.store.ops.contacts import NewContact
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Dispatch
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=5)

step = st.tuples(
    st.integers(0, 400),                     # seconds that pass before the step
    st.sampled_from(["w1", "w2", "w3"]),     # who claims
    st.integers(1, 4),                       # claim limit
    st.lists(st.sampled_from(["sent", "retry", "final", "crash", "late"]), min_size=4, max_size=4),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attempts=st.lists(st.integers(1, 3), min_size=1, max_size=8), steps=st.lists(step, max_size=25))
def test_workers_doing_anything_never_share_an_item_never_send_twice_and_lose_nothing(ops_db, attempts, steps):
    with unit_of_work(ops_db) as s:
        s.execute(sa.delete(Dispatch))
        contacts.enqueue(s, now=T0, contacts=[NewContact(T0.date(), f"C{i}", "s", "w", "sms", max_attempts=m)
                                              for i, m in enumerate(attempts)])
    now = T0
    holder: dict[int, tuple[str, dt.datetime]] = {}  # item -> (claim token, lease end) as the model sees it
    sent: set[int] = set()
    stale: list[tuple[int, str]] = []                # claims of workers that crashed and may come back

    def claim(worker, limit):
        with unit_of_work(ops_db) as s:
            batch = contacts.claim_batch(s, worker=worker, limit=limit, now=now, lease=LEASE)
        for item in batch:
            assert item.id not in sent
            if item.id in holder:
                assert holder[item.id][1] <= now, "an item was handed out while another claim was live"
            holder[item.id] = (item.claim_token, now + LEASE)
        return batch

    for seconds, worker, limit, fates in steps:
        now += dt.timedelta(seconds=seconds)
        for (item_id, token), fate in zip(list(stale), fates, strict=False):
            if fate == "late":  # a crashed worker wakes up and reports: it counts unless the item was re-claimed
                with unit_of_work(ops_db) as s:
                    ok = contacts.mark_sent(s, dispatch_id=item_id, claim_token=token, now=now)
                assert ok == (holder.get(item_id, ("",))[0] == token)
                if ok:
                    sent.add(item_id)
                    holder.pop(item_id)
                stale.remove((item_id, token))
        for item, fate in zip(claim(worker, limit), fates + ["crash"] * limit, strict=False):
            with unit_of_work(ops_db) as s:
                if fate == "sent":
                    assert contacts.mark_sent(s, dispatch_id=item.id, claim_token=item.claim_token, now=now)
                    sent.add(item.id)
                    holder.pop(item.id)
                elif fate in ("retry", "final"):
                    assert contacts.mark_failed(s, dispatch_id=item.id, claim_token=item.claim_token, now=now,
                                                error="HTTP 503", retryable=fate == "retry") is not None
                    holder.pop(item.id)
                else:
                    stale.append((item.id, item.claim_token))
        with ops_db() as s:
            assert sum(contacts.outbox_counts(s).values()) == len(attempts)

    # then everything settles: healthy workers drain the outbox
    for _ in range(5):
        now += dt.timedelta(hours=7)  # past any lease and any backoff
        batch = claim("drain", 50)
        with unit_of_work(ops_db) as s:
            for item in batch:
                assert contacts.mark_sent(s, dispatch_id=item.id, claim_token=item.claim_token, now=now)
                sent.add(item.id)
                holder.pop(item.id)
        if not batch:
            break
    with ops_db() as s:
        counts = contacts.outbox_counts(s)
        sent_ids = set(s.scalars(sa.select(Dispatch.id).where(Dispatch.status == "sent")))
    assert counts["pending"] == counts["claimed"] == 0
    assert counts["sent"] + counts["failed"] == len(attempts)
    assert sent_ids == sent
