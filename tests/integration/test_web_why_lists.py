"""``why`` and the day's lists on the web, over a small simulated bank planned for real (300 customers, 60 days,
seed 5): the replay an RM gets for their own customer is the CLI's (``Context.why`` as the system), in their
masking; head office gets money banded; another book's customer is the bytes of an unknown one; the lists page's
counts are the lists file's, counted independently here."""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest

from lifeloop.context import Context
from lifeloop.data.access import Principal
from lifeloop.store.ops import web_sessions
from tests.web_world import PASSWORD, cheap_argon2, sign_in

pytestmark = pytest.mark.slow
STEPS = ["features", "lifecycle", "segments", "audiences", "plan"]


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    base = tmp_path_factory.mktemp("webwhy")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LIFELOOP_DATABASE_URL", raising=False)
        mp.setattr(web_sessions, "_hasher", cheap_argon2)
        ctx = Context.init(base / "ws")
        sim = ctx.simulate(base / "extracts", customers=300, days=60, seed=5)
        ctx.ingest(base / "extracts", as_of=sim.as_of)
        ctx.run(sim.as_of, steps=STEPS)
        rows = pq.read_table(ctx.lake.snapshot_dir("lists", sim.as_of) / "lists.parquet").to_pylist()
        dropped = next(r for r in rows if r["status"] == "dropped" and r["rm_id"])
        other = next(r for r in rows if r["rm_id"] and r["rm_id"] != dropped["rm_id"])
        for name, role in (("rm", f"rm={dropped['rm_id']}"), ("analyst", "analyst")):
            ctx.add_user(name, roles=[role])
            ctx.set_password(name, PASSWORD)
        ctx.close()
        yield base / "ws", sim.as_of, rows, dropped, other


def client(ws):
    from fastapi.testclient import TestClient

    from lifeloop.api import create_app

    return TestClient(create_app(lambda: Context(ws), decide=False), base_url="http://127.0.0.1",
                      follow_redirects=False)


def test_why_on_the_web_is_the_clis_replay_in_the_readers_masking_and_scope(planned):
    ws, day, _rows, dropped, other = planned
    system = Context(ws, principal=Principal.system("tests"))
    cli = system.why(dropped["customer_id"], day)
    system.close()
    with client(ws) as http:
        assert sign_in(http, "rm").status_code == 303
        own = http.get(f"/api/why/{dropped['customer_id']}", params={"as_of": day.isoformat()})
        assert own.status_code == 200
        got = own.json()
        assert [(c["strategy"], c["wave"], c["status"], c["dropped_by"]) for c in got["decisions"]] == [
            (c["strategy"], c["wave"], c["status"], c["dropped_by"]) for c in cli["decisions"]]
        assert dropped["dropped_by"] in {c["dropped_by"] for c in got["decisions"]}
        assert got["access"]["role"] == "rm" and got["access"]["money"] == "exact"
        page = http.get("/ops/why", params={"customer": dropped["customer_id"], "as_of": day.isoformat()}).text
        assert 'id="why-decisions"' in page and dropped["strategy"] in page
        unknown = http.get("/api/why/C_NOBODY", params={"as_of": day.isoformat()})
        assert unknown.status_code == 404
        assert http.get(f"/api/why/{other['customer_id']}", params={"as_of": day.isoformat()}).content == \
            unknown.content
    with client(ws) as http:
        assert sign_in(http, "analyst").status_code == 303
        banded = http.get(f"/api/why/{dropped['customer_id']}").json()   # the newest planned day by default
        assert banded["as_of"] == day.isoformat() and banded["access"]["money"] == "banded"


def test_the_lists_page_counts_what_the_lists_file_holds(planned):
    ws, day, rows, _dropped, _other = planned
    by_status = Counter(r["status"] for r in rows)
    by_reason = Counter(r["dropped_by"] for r in rows if r["status"] == "dropped")
    with client(ws) as http:
        assert sign_in(http, "analyst").status_code == 303
        doc = http.get("/api/lists", params={"as_of": day.isoformat()}).json()
        assert {k: doc["totals"][k] for k in ("contact", "control", "dropped")} == {
            k: by_status.get(k, 0) for k in ("contact", "control", "dropped")}
        assert doc["totals"]["dropped_by"] == dict(by_reason)
        assert sum(c["contact"] + c["control"] + c["dropped"] for c in doc["cells"]) == len(rows)
        reason, n = by_reason.most_common(1)[0]
        listed = http.get("/api/lists/rows", params={"as_of": day.isoformat(), "status": "dropped",
                                                     "dropped_by": reason}).json()
        assert listed["total"] == n and len(listed["rows"]) == min(n, 200)
        assert http.get("/ops/lists", params={"as_of": day.isoformat()}).status_code == 200
        assert http.get("/ops/runs").status_code == 200 and day.isoformat() in http.get("/ops/runs").text
