"""A small bank for the real-time tests: a workspace with a bank batch, daily snapshots of D, two real-time
strategies (salary credited, large outflow), the template's contact policy, and a recording gateway.

Customers (all with an RM and consent to marketing SMS unless said otherwise):

    C001..C006  mass, active, risk C3 — the salary strategy's audience
    C007        dormant (not in any audience: stage = 'dormant')
    C008        no consent row for marketing SMS (opt-in: refused at the gate)
    C009        risk C1: a wealth product (R3) is unsuitable for them
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from lifeloop.context import Context
from lifeloop.data.schema import TABLES, arrow_schema
from lifeloop.realtime.access import token_hash
from lifeloop.store.ops.migrations import upgrade
from tests.gate_world import TZ, Clock, RecordingGateway, local

D = dt.date(2026, 3, 2)
CUSTOMERS = [f"C{i:03d}" for i in range(1, 10)]

STRATEGIES = """\
version: 1
holdout_salt: lifeloop
strategies:
  - id: salary_care
    name: {zh: 代发到账关怀, en: Salary care}
    owner: ops
    objective: {kind: scale, metric: aum, window_days: 30}
    scenario: {kind: event, name: 代发工资到账}
    audience: "stage <> 'dormant'"
    offer: {code: SALARY_CARE}
    channels: [sms]
    scripts: {sms: {zh: "工资到账了，理财看看？"}}
    waves: [{id: w1, day: 0}]
    holdout: 0.3
    start: 2026-01-01
  - id: outflow_retain
    name: {zh: 大额转出挽留, en: Outflow retention}
    owner: ops
    objective: {kind: scale, metric: aum, window_days: 30}
    scenario: {kind: event, name: 大额转出}
    audience: "aum >= 10000"
    offer: {product_id: WM01}
    channels: [sms]
    scripts: {sms: {zh: "稳健理财，了解一下"}}
    waves: [{id: w1, day: 0}]
    holdout: 0
    start: 2026-01-01
"""

EVENTS = """\
reentry_hours: 24
moments:
  - {id: salary_credited, kind: salary_credited, scene: 代发工资到账}
  - {id: large_outflow, kind: large_outflow, amount: 50000, scene: 大额转出}
  - {id: large_inflow, kind: large_inflow, amount: 50000}
  - {id: low_balance, kind: low_balance, below: 100}
  - {id: first_card_swipe, kind: first_card_swipe}
"""


def _table(name: str, rows: list[dict]) -> pa.Table:
    schema = arrow_schema(name)
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema})


def publish_bank(ctx: Context, day: dt.date = D) -> None:
    customers = [{"customer_id": c, "name": f"客户{c}", "gender": "F", "branch_id": "B1", "rm_id": "RM1",
                  "risk_level": "C1" if c == "C009" else "C3", "risk_assessed_on": dt.date(2025, 6, 1),
                  "risk_expires_on": dt.date(2027, 6, 1), "open_date": dt.date(2020, 1, 1), "is_prospect": False}
                 for c in CUSTOMERS]
    consent = [{"customer_id": c, "purpose": p, "channel": "sms", "granted": True}
               for c in CUSTOMERS if c != "C008" for p in ("marketing", "service")]
    tables = {"branches": [{"branch_id": "B1", "name": "Main", "city": "SH", "region": "East"}],
              "relationship_managers": [{"rm_id": "RM1", "name": "Li", "branch_id": "B1"}],
              "customers": customers, "consent": consent,
              "products": [{"product_id": "WM01", "name": "稳健理财", "product_type": "wealth", "risk_level": "R3",
                            "currency": "CNY"}]}
    assert set(tables) <= set(TABLES)

    def write(staging: Path):
        for name, rows in tables.items():
            pq.write_table(_table(name, rows), staging / f"{name}.parquet")

    ctx.lake.publish("bank", day, write)


def publish_snapshots(ctx: Context, day: dt.date = D) -> None:
    """features (aum), lifecycle (stage) and segments (tier) of ``day``, by hand."""
    aum = {c: 50_000.0 for c in CUSTOMERS} | {"C002": 5_000.0}
    snaps = {
        "features": pa.table({"customer_id": CUSTOMERS, "aum": [aum[c] for c in CUSTOMERS]}),
        "lifecycle": pa.table({"customer_id": CUSTOMERS,
                               "stage": ["dormant" if c == "C007" else "active" for c in CUSTOMERS],
                               "previous_stage": pa.array([None] * len(CUSTOMERS), pa.string()),
                               "days_in_stage": pa.array([30] * len(CUSTOMERS), pa.int32())}),
        "segments": pa.table({"customer_id": CUSTOMERS, "tier": ["mass"] * len(CUSTOMERS)}),
    }
    for area, table in snaps.items():
        ctx.lake.publish(area, day, lambda staging, t=table, a=area: pq.write_table(t, staging / f"{a}.parquet"))


def make_world(root: Path, database_url: str, monkeypatch, *, events: str = EVENTS,
               strategies: str = STRATEGIES) -> Context:
    monkeypatch.setenv("LIFELOOP_DATABASE_URL", database_url)
    upgrade(database_url)
    ctx = Context.init(root / "ws")
    (ctx.config_dir / "strategies.yaml").write_text(strategies, encoding="utf-8")
    (ctx.config_dir / "events.yaml").write_text(events, encoding="utf-8")
    publish_bank(ctx)
    publish_snapshots(ctx)
    return ctx


def salary(i: int | str, customer: str, at: dt.datetime, amount: str = "8000.00") -> dict:
    return {"kind": "transaction", "event_id": f"sal-{i}", "customer_id": customer, "occurred_at": at.isoformat(),
            "amount": amount, "direction": "credit", "txn_type": "salary", "counterparty_kind": "employer"}


def outflow(i: int | str, customer: str, at: dt.datetime, amount: str) -> dict:
    return {"kind": "transaction", "event_id": f"out-{i}", "customer_id": customer, "occurred_at": at.isoformat(),
            "amount": amount, "direction": "debit", "txn_type": "transfer", "counterparty_kind": "bank"}


__all__ = ["TZ", "Clock", "RecordingGateway", "local", "D", "CUSTOMERS", "make_world", "salary", "outflow"]


# ------------------------------------------------------------------------------------------ a server process
TOKEN = "bench-core-banking-token"


def build_workspace(root: Path, *, customers: int = len(CUSTOMERS), day: dt.date = D, rate: float = 100_000,
                    database_url: str | None = None) -> Path:
    """A workspace for a server process: ``customers`` customers (all consenting to marketing SMS), snapshots of
    ``day``, the two real-time strategies, a source with token :data:`TOKEN`, SMS exported to files."""
    import os

    before = os.environ.get("LIFELOOP_DATABASE_URL")
    if database_url:
        os.environ["LIFELOOP_DATABASE_URL"] = database_url
        upgrade(database_url)
    try:
        ctx = Context.init(root / "ws")
        ids = [f"C{i:06d}" for i in range(customers)]
        (ctx.config_dir / "strategies.yaml").write_text(STRATEGIES.replace("offer: {product_id: WM01}",
                                                                           "offer: {code: RETAIN}"), encoding="utf-8")
        (ctx.config_dir / "events.yaml").write_text(
            EVENTS + f"sources:\n  - {{name: core, token_sha256: {token_hash(TOKEN)}, rate_per_second: {rate}, "
            f"burst: {int(rate)}}}\n", encoding="utf-8")
        bank = {"customers": [{"customer_id": c, "name": f"客户{c}", "branch_id": "B1", "rm_id": "RM1",
                               "risk_level": "C3", "is_prospect": False} for c in ids],
                "consent": [{"customer_id": c, "purpose": "marketing", "channel": "sms", "granted": True} for c in ids],
                "branches": [{"branch_id": "B1", "name": "Main"}],
                "relationship_managers": [{"rm_id": "RM1", "name": "Li", "branch_id": "B1"}],
                "products": [{"product_id": "WM01", "name": "稳健理财", "product_type": "wealth", "risk_level": "R3"}]}

        def write(staging: Path):
            for name, rows in bank.items():
                pq.write_table(_table(name, rows), staging / f"{name}.parquet")

        ctx.lake.publish("bank", day, write)
        # a server test or bench must not depend on the hour it runs: no quiet hours (the gate's quiet hours are
        # tested with a fake clock); otherwise a run in the bank's evening holds every SMS until the morning
        policy_file = ctx.config_dir / "contact_policy.yaml"
        policy = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
        policy["quiet_hours"] = {}
        policy_file.write_text(yaml.safe_dump(policy, allow_unicode=True, sort_keys=False), encoding="utf-8")
        n = len(ids)
        snaps = {"features": pa.table({"customer_id": ids, "aum": [50_000.0] * n}),
                 "lifecycle": pa.table({"customer_id": ids, "stage": ["active"] * n,
                                        "previous_stage": pa.nulls(n, pa.string()),
                                        "days_in_stage": pa.array([30] * n, pa.int32())}),
                 "segments": pa.table({"customer_id": ids, "tier": ["mass"] * n})}
        for area, table in snaps.items():
            ctx.lake.publish(area, day, lambda staging, t=table, a=area: pq.write_table(t, staging / f"{a}.parquet"))
        ctx.ops()
        ctx.close()
    finally:
        if before is None:
            os.environ.pop("LIFELOOP_DATABASE_URL", None)
        else:
            os.environ["LIFELOOP_DATABASE_URL"] = before
    return root / "ws"


class ServerProcess:
    """``lifeloop serve`` in a child process on 127.0.0.1 (so a test or bench can kill -9 it)."""

    def __init__(self, workspace: Path, *, database_url: str | None = None):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.workspace = workspace
        self.database_url = database_url
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ServerProcess:
        import os
        import subprocess
        import sys
        import time

        import httpx

        env = {k: v for k, v in os.environ.items() if k != "LIFELOOP_DATABASE_URL"}
        if self.database_url:
            env["LIFELOOP_DATABASE_URL"] = self.database_url
        self.proc = subprocess.Popen([sys.executable, "-m", "lifeloop.cli", "--workspace", str(self.workspace),
                                      "serve", "--port", str(self.port)], env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lifeloop serve exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("lifeloop serve did not answer /health in time")

    def kill(self) -> None:
        """kill -9: no clean shutdown."""
        import signal

        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except Exception:  # noqa: BLE001 - then the hard way
                self.kill()
