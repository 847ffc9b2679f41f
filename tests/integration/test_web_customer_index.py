"""The web app builds the customer index for the newest bank batch in the background when a page finds none, and
the customer 360 answers the same before (scan) and after (index)."""

from __future__ import annotations

import threading

from lifeloop.store import customer_index
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import D, bank, client_for, sign_in  # noqa: F401 - fixture


def test_the_first_customer_page_starts_the_index_and_later_pages_read_it_with_the_same_answer(bank, monkeypatch):
    ws, clock = bank
    used = []
    real = customer_index.customer_rows

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        used.append(got is not None)
        return got
    monkeypatch.setattr(customer_index, "customer_rows", spy)
    with client_for(ws, clock) as http:
        sign_in(http, "rm1")
        before = http.get("/api/customers/C001").json()
        for t in [t for t in threading.enumerate() if t.name == "customer-index"]:
            t.join(timeout=60)   # the build the first page started
        assert (ws / "lake" / "customer_index" / f"as_of={D.isoformat()}" / "_manifest.json").exists()
        after = http.get("/api/customers/C001").json()
    assert used[0] is False and used[-1] is True   # the scan first, the index after
    before["profile"]["access"].pop("at")
    after["profile"]["access"].pop("at")
    assert after == before and after["profile"]["attributes"]["name"] == "王小明"
