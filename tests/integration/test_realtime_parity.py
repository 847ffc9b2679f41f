"""One definition, batch and stream: a simulated day's transactions replayed as events — shuffled, with 10%
duplicate ids and 5% late arrivals — fire exactly the moments the batch finds in the lake's transactions of
that day, and contact nobody twice (checked on the delivered log). SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml

from lifeloop.config.events import EventsConfig
from lifeloop.context import Context
from lifeloop.data.simulator import simulate
from lifeloop.data.simulator.stream import event_stream
from lifeloop.realtime.batch import day_moments
from lifeloop.store.ops.migrations import upgrade
from lifeloop.store.ops.models import Dispatch, Moment
from tests.gate_world import TZ, Clock, RecordingGateway, local
from tests.ops_fixtures import database_url  # noqa: F401 - fixture
from tests.realtime_world import STRATEGIES

DAY = dt.date(2024, 1, 10)     # a payday of the simulated bank (seed 3): salaries, transfers, cash
EVENTS = """\
reentry_hours: 24
moments:
  - {id: salary_credited, kind: salary_credited, scene: 代发工资到账}
  - {id: large_outflow, kind: large_outflow, amount: 2000, scene: 大额转出}
  - {id: large_inflow, kind: large_inflow, amount: 500}
  - {id: low_balance, kind: low_balance, below: 200}
  - {id: first_card_swipe, kind: first_card_swipe}
"""


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "bank"
    simulate(out, customers=200, days=12, seed=3)
    return out


def world(root, out, database_url, monkeypatch) -> Context:
    monkeypatch.setenv("LIFELOOP_DATABASE_URL", database_url)
    upgrade(database_url)
    ctx = Context.init(root / "ws")
    strategies = STRATEGIES.replace("offer: {product_id: WM01}", "offer: {code: RETAIN}").replace(
        "start: 2026-01-01", "start: 2024-01-01")
    (ctx.config_dir / "strategies.yaml").write_text(strategies, encoding="utf-8")
    (ctx.config_dir / "events.yaml").write_text(EVENTS, encoding="utf-8")
    def copy(staging):
        for n in ("branches", "relationship_managers", "customers", "products", "consent", "transactions"):
            shutil.copyfile(out / f"{n}.parquet", staging / f"{n}.parquet")

    ctx.lake.publish("bank", DAY, copy)
    customers = pq.read_table(out / "customers.parquet")["customer_id"]
    n = len(customers)
    snaps = {"features": pa.table({"customer_id": customers, "aum": [50_000.0] * n}),
             "lifecycle": pa.table({"customer_id": customers, "stage": ["active"] * n,
                                    "previous_stage": pa.nulls(n, pa.string()),
                                    "days_in_stage": pa.array([30] * n, pa.int32())}),
             "segments": pa.table({"customer_id": customers, "tier": ["mass"] * n})}
    for area, table in snaps.items():
        ctx.lake.publish(area, DAY, lambda staging, t=table, a=area: pq.write_table(t, staging / f"{a}.parquet"))
    return ctx


def test_the_stream_replayed_shuffled_with_duplicates_and_late_events_fires_exactly_the_batch_moments(
        tmp_path, simulated, database_url, monkeypatch):
    ctx = world(tmp_path, simulated, database_url, monkeypatch)
    config = EventsConfig.model_validate(yaml.safe_load(EVENTS))
    batch = {t.key: t for t in day_moments(ctx.lake, DAY, config.moments, TZ)}
    kinds = Counter(t.moment for t in batch.values())
    assert kinds["salary_credited"] >= 20
    assert min(kinds[k] for k in ("large_outflow", "large_inflow", "low_balance")) >= 1

    events = [e for e in event_stream(simulated, DAY, timezone=TZ) if e["kind"] == "transaction"]
    txns = pq.read_table(simulated / "transactions.parquet")
    assert len(events) == txns.filter(pc.equal(txns["txn_date"], DAY)).num_rows > 50
    rng = random.Random(20240110)
    rng.shuffle(events)
    late = events[: len(events) // 20]                                   # 5%: arrive after everything else
    on_time = events[len(events) // 20:]
    for e in rng.sample(events, len(events) // 10):                     # 10%: sent twice
        on_time.insert(rng.randrange(len(on_time) + 1), dict(e))
    clock = Clock(local(DAY, 23, 59) - dt.timedelta(hours=3))            # 20:59 local: every channel open
    gateway = RecordingGateway(clock)
    decider = ctx.decider(clock=clock, adapters=gateway.adapters())
    duplicates = 0
    try:
        for start in range(0, len(on_time), 37):
            duplicates += len(ctx.accept_events(on_time[start:start + 37], source="core").duplicates)
            decider.run_once()
        clock.now = local(DAY + dt.timedelta(days=1), 9, 0)               # the late ones come the next morning
        duplicates += len(ctx.accept_events(late, source="core").duplicates)
        decider.run_until_idle()
    finally:
        decider.close()
    assert duplicates == len(events) // 10
    with ctx.ops()() as s:
        stream = set(s.scalars(sa.select(Moment.moment_key)))
        outbox = Counter(s.execute(sa.select(Dispatch.customer_id, Dispatch.strategy_id)).all())
    assert stream == set(batch)
    assert sum(outbox.values()) >= 15 and max(outbox.values()) == 1
    delivered = Counter((d.customer_id, d.strategy) for d in gateway.delivered)
    assert delivered and max(delivered.values()) == 1
    ctx.close()
