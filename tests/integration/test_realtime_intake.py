"""Event intake: validated against the schema (a bad event refused naming the field, nothing stored), stored
once per id (duplicates acknowledged, also under concurrency), committed before it is acknowledged.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
import sqlalchemy as sa

from lifeloop.errors import EventError
from lifeloop.realtime.intake import Receipt, accept, decode_body, read_file
from lifeloop.store.ops.models import Event
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

T0 = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)   # 09:30 in Shanghai


def txn(i: int, **over) -> dict:
    e = {"kind": "transaction", "event_id": f"t{i}", "customer_id": f"C{i % 7:03d}",
         "occurred_at": (T0 + dt.timedelta(seconds=i)).isoformat(), "amount": "1200.50", "direction": "credit",
         "txn_type": "salary"}
    e.update(over)
    return e


def stored(ops_db) -> dict[str, Event]:
    with ops_db() as s:
        return {e.event_id: e for e in s.scalars(sa.select(Event))}


def test_events_are_stored_once_and_a_repeated_id_is_acknowledged_as_a_duplicate(ops_db):
    first = accept(ops_db, [txn(1), txn(2), txn(1)], source="core", timezone="Asia/Shanghai")
    assert first.accepted == ["t1", "t2"] and first.duplicates == ["t1"]
    again = accept(ops_db, [txn(2, amount="99.00"), txn(3)], source="core", timezone="Asia/Shanghai")
    assert again.accepted == ["t3"] and again.duplicates == ["t2"]
    rows = stored(ops_db)
    assert sorted(rows) == ["t1", "t2", "t3"]
    assert rows["t2"].body["amount"] == "1200.50"          # the duplicate changed nothing
    assert rows["t1"].local_date == dt.date(2026, 3, 2) and rows["t1"].source == "core"
    late = accept(ops_db, [txn(4, occurred_at="2026-03-02T23:30:00+08:00")], source="core", timezone="Asia/Shanghai")
    assert late.accepted == ["t4"]
    assert stored(ops_db)["t4"].local_date == dt.date(2026, 3, 2)   # the bank's local date, not UTC's (15:30 UTC)
    assert stored(ops_db)["t4"].decided_at is None


@pytest.mark.parametrize("bad, field, words", [
    ({"amount": "-5"}, "amount", "greater than 0"),
    ({"txn_type": "bonus"}, "txn_type", "salary"),
    ({"occurred_at": "2026-03-02T09:30:00"}, "occurred_at", "timezone"),
    ({"amout": "5"}, "amout", "unknown field"),
    ({"kind": "tweet"}, "kind", "transaction, app, card_swipe, core_notice"),
    ({"customer_id": None}, "customer_id", "string"),
])
def test_a_bad_event_refuses_its_whole_batch_naming_the_row_and_field_and_nothing_is_stored(ops_db, bad, field, words):
    batch = [txn(1), txn(2, **bad), txn(3)]
    with pytest.raises(EventError) as caught:
        accept(ops_db, batch, source="core", timezone="UTC", where="request")
    problem = caught.value.problems[0]
    assert (problem.row, problem.field) == (2, field)
    assert words in problem.message and "(event_id t2)" in problem.message
    assert "none was stored" in caught.value.message
    assert stored(ops_db) == {}


def test_concurrent_batches_with_overlapping_ids_store_each_id_exactly_once(ops_db):
    receipts: list[Receipt] = []
    errors: list[BaseException] = []

    def post(k: int) -> None:
        try:   # 8 clients, each sending ids 0..59 in its own order: every id is sent 8 times at once
            ids = list(range(60))[k % 3:] + list(range(60))[:k % 3]
            for start in range(0, 60, 20):
                receipts.append(accept(ops_db, [txn(i) for i in ids[start:start + 20]], source=f"s{k}", timezone="UTC"))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    accepted = [i for r in receipts for i in r.accepted]
    assert sorted(accepted) == sorted(f"t{i}" for i in range(60))          # each id acknowledged as new once
    assert sum(len(r.duplicates) for r in receipts) == 60 * 7
    assert len(stored(ops_db)) == 60


def test_files_and_bodies_are_read_with_rows_named(tmp_path, ops_db):
    good = tmp_path / "events.jsonl"
    good.write_text("\n".join(json.dumps(txn(i)) for i in range(3)) + "\n\n", encoding="utf-8")
    assert len(read_file(good)) == 3
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(txn(1)) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(EventError) as caught:
        read_file(broken)
    assert caught.value.problems[0].row == 2 and caught.value.problems[0].file == "broken.jsonl"
    csv = tmp_path / "events.csv"
    csv.write_text("kind,event_id,customer_id,occurred_at,amount,direction,txn_type,counterparty_kind\n"
                   "transaction,c1,C1,2026-03-02T09:00:00+08:00,60000,credit,transfer,\n", encoding="utf-8")
    receipt = accept(ops_db, read_file(csv), source="file", timezone="Asia/Shanghai", where=csv.name)
    assert receipt.accepted == ["c1"] and "counterparty_kind" not in stored(ops_db)["c1"].body
    assert decode_body(b'{"events": [{"a": 1}, {"b": 2}]}') == [{"a": 1}, {"b": 2}]
    assert decode_body(json.dumps(txn(1)).encode()) == [txn(1)]
    with pytest.raises(EventError):
        decode_body(b"[1, 2")
    with pytest.raises(EventError, match="no such file"):
        read_file(tmp_path / "missing.jsonl")
