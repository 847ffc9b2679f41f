"""A small bank for the web app's tests: 2 branches x 3 RMs, one customer per RM with an RM task, users of every
role with passwords, a fixed clock, and the app under FastAPI's TestClient (``http://127.0.0.1``).

B01 has RM001..RM003 (customers C001..C003), B02 has RM004..RM006 (C004..C006). Each customer is on day D's
list for an ``rm`` contact, so after ``dispatch`` each RM has one task (with its contact). The board's
document is the fixture review (tests/fixtures/review_sample.json) unless a test gives another.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lifeloop.api import create_app
from lifeloop.context import Context
from lifeloop.data.access import Principal
from lifeloop.data.schema import TABLES, arrow_schema
from lifeloop.execution.dispatch import dispatch
from lifeloop.store.ops import web_sessions
from tests.integration.test_worklists import publish, replay

D = dt.date(2024, 3, 1)
PASSWORD = "correct horse battery staple"
REVIEW = Path(__file__).parent / "fixtures" / "review_sample.json"
BRANCHES = {"B01": ("RM001", "RM002", "RM003"), "B02": ("RM004", "RM005", "RM006")}
RMS = {rm: b for b, rms in BRANCHES.items() for rm in rms}
CUSTOMER_OF = {rm: f"C00{i}" for i, rm in enumerate(sorted(RMS), 1)}
NAMES = {"C001": "王小明", "C002": "李华", "C003": "张伟", "C004": "赵敏", "C005": "孙丽", "C006": "周杰"}
# user -> role grants
USERS = {**{f"rm{i}": (f"rm=RM00{i}",) for i in range(1, 7)},
         "bm1": ("branch_manager=B01",), "bm2": ("branch_manager=B02",),
         "analyst": ("analyst",), "compliance": ("compliance",), "approver": ("approver",), "admin": ("admin",)}


class Clock:
    """A clock tests move by hand (sessions' idle timeout, feedback times, the next day's dispatch)."""

    def __init__(self, at: dt.datetime):
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), ZoneInfo("Asia/Shanghai")).astimezone(dt.UTC)


def customer_row(rm: str) -> dict:
    c = CUSTOMER_OF[rm]
    return dict(customer_id=c, name=NAMES[c], mobile=f"1380000000{c[-1]}", gender="F", rm_id=rm, branch_id=RMS[rm],
                risk_level="C3", risk_assessed_on=D - dt.timedelta(days=30), risk_expires_on=D + dt.timedelta(days=335))


def list_row(rm: str, as_of: dt.date = D) -> dict:
    c = CUSTOMER_OF[rm]
    return dict(as_of=as_of, customer_id=c, strategy="wealth_churn_retention", wave="w1", group="treated",
                status="contact", channel="rm", send_at="09:00", purpose="marketing",
                script_id="wealth_churn_retention.rm", script_key=f"wealth_churn_retention.rm@{as_of}#{c}",
                offer="WM090", priority=90, rm_id=rm)


def lists(as_of: dt.date) -> dict:
    return {"lists": [list_row(rm, as_of) for rm in sorted(RMS)]}


def publish_bank(lake, tables: dict) -> None:
    """Day D's bank batch: every canonical table, with the canonical columns (empty where not given)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(staging):
        for name in TABLES:
            pq.write_table(pa.Table.from_pylist(tables.get(name, []), schema=arrow_schema(name)),
                           staging / f"{name}.parquet")
    lake.publish("bank", D, write)


def make_bank(ws: Path, clock: Clock) -> None:
    """The workspace: bank extract, day D's lists dispatched (one task per RM), users with passwords."""
    ctx = Context.init(ws, clock=clock)
    try:
        replay(ctx)
        publish_bank(ctx.lake, {
            "customers": [customer_row(rm) for rm in sorted(RMS)],
            "branches": [dict(branch_id=b, name=f"支行{b}") for b in BRANCHES],
            "relationship_managers": [dict(rm_id=rm, name=f"经理{rm[-1]}", branch_id=b, daily_capacity=20)
                                      for rm, b in RMS.items()],
            "consent": [dict(customer_id=c, purpose="marketing", channel=ch, granted=True)
                        for c in CUSTOMER_OF.values() for ch in ("sms", "rm", "call")],
            "products": [dict(product_id="WM090", name="新客理财90天", product_type="wealth", risk_level="R2"),
                         *(dict(product_id=p, name=p, product_type="wealth", risk_level="R2")   # the map's other offers
                           for p in ("TD1Y", "WM180", "WM030", "CC_STD"))]})
        publish(ctx.lake, "lists", lists(D))
        summary = dispatch(ctx, D)
        assert summary.sent == len(RMS)
        for name, roles in USERS.items():   # the workspace's owner (the OS user, an administrator) adds them
            ctx.add_user(name, roles=list(roles))
            ctx.set_password(name, PASSWORD)
    finally:
        ctx.close()


def cheap_argon2():
    """argon2id at its lowest cost: the tests' hashes are the real format and check, without a second each."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def fixture_review(_ctx: Context, _as_of: dt.date | None, interim: bool = False) -> dict:
    """The sample document, marked interim when the board asks for the interim review."""
    return {**json.loads(REVIEW.read_text(encoding="utf-8")), "interim": interim}


def client_for(ws: Path, clock: Clock, review=fixture_review):
    """A TestClient over the app (no background decider), on the loopback address as `lifeloop serve` is."""
    from fastapi.testclient import TestClient

    app = create_app(lambda: Context(ws, clock=clock), decide=False, review=review)
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)


CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client, user: str, password: str = PASSWORD):
    """Sign in through the form (pre-cookie and its CSRF token first); returns the response."""
    page = client.get("/sign-in")
    return client.post("/sign-in", data={"user": user, "password": password, "csrf": csrf_of(page.text)})


def csrf_now(client, path: str = "/worklist") -> str:
    """The signed-in session's CSRF token, read from a page."""
    return csrf_of(client.get(path).text)


@pytest.fixture
def bank(tmp_path, database_url, ops_db, monkeypatch):  # noqa: F811 - fixtures from tests.ops_fixtures
    """(workspace, clock): the bank above on the test's database, the clock at D 18:00 local."""
    monkeypatch.setenv("LIFELOOP_DATABASE_URL", database_url)
    monkeypatch.setattr(web_sessions, "_hasher", cheap_argon2)
    clock = Clock(local(D, 18))
    ws = tmp_path / "ws"
    make_bank(ws, clock)
    return ws, clock


def system(ws: Path, clock: Clock) -> Context:
    return Context(ws, principal=Principal.system("tests"), clock=clock)
