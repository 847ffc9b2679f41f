"""C2 fields of the operations database encrypted at rest, on SQLite and PostgreSQL: the raw columns hold no
plaintext, a value cannot be moved to another column, lookups go through a blind index, old plaintext rows
still read and are encrypted by re-encryption, and a master-key rotation leaves every row readable."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from lifeloop.errors import DataError, OpsDatabaseError
from lifeloop.store.ops.contacts import NewContact, enqueue
from lifeloop.store.ops.encrypted import ENCRYPTED_COLUMNS, attach, cipher_of, lookup_hash, normalise_phone, reencrypt
from lifeloop.store.ops.models import Dispatch, InboundReply, Lead, Task
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

NOW = dt.datetime(2026, 3, 2, 2, tzinfo=dt.UTC)
NAME, PHONE, MOBILE, SCRIPT = "欧阳晓明", "139 1234 5678", "+86 13912345678", "您好欧阳先生, 您的定期存款将于3月到期"


def populate(factory) -> None:
    with factory.begin() as s:
        s.add(Lead(name=NAME, phone=PHONE, note=f"referred by C1, call {PHONE}", rm_id="RM1"))
        s.add(InboundReply(channel="sms", mobile=MOBILE, text="TD 退订", received_at=NOW, outcome="review",
                           source="file", idempotency_key="r1"))
        s.add(Task(rm_id="RM1", customer_id="C1", title="call C1", script=SCRIPT, due_on=NOW.date(), note=NAME))
        enqueue(s, contacts=[NewContact(as_of=NOW.date(), customer_id="C1", strategy_id="s", wave="w",
                                        channel="sms", payload={"name": NAME, "offer": "time_deposit_1y"})], now=NOW)


def raw_values(factory) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with factory() as s:
        for table, column in ENCRYPTED_COLUMNS:
            rows = s.execute(sa.text(f"SELECT CAST({column} AS TEXT) FROM {table} WHERE {column} IS NOT NULL"))
            out[f"{table}.{column}"] = [r[0] for r in rows]
    return out


def test_the_raw_columns_hold_no_plaintext_and_the_orm_reads_it_back(ops_db):  # noqa: F811
    populate(ops_db)
    raw = raw_values(ops_db)
    assert all(raw[k] for k in ("leads.name", "leads.phone", "inbound_replies.mobile", "tasks.script",
                                "dispatches.payload", "inbound_replies.text"))
    text = repr(raw)
    for plain in (NAME, "欧阳", PHONE, "13912345678", "退订", "定期存款", '"name"', "time_deposit_1y"):
        assert plain not in text, plain
    assert all(v.startswith("lle1:1:") for values in raw.values() for v in values)
    with ops_db() as s:
        lead = s.scalars(sa.select(Lead)).one()
        assert (lead.name, lead.phone) == (NAME, PHONE)
        assert s.scalars(sa.select(Task)).one().script == SCRIPT
        assert s.scalars(sa.select(Dispatch)).one().payload == {"name": NAME, "offer": "time_deposit_1y"}
        assert s.scalars(sa.select(InboundReply)).one().mobile == MOBILE


def test_the_same_value_encrypts_differently_each_time(ops_db):  # noqa: F811
    with ops_db.begin() as s:
        s.add_all([Lead(name=NAME), Lead(name=NAME)])
    first, second = raw_values(ops_db)["leads.name"]
    assert first != second       # a random nonce per value: equal names are not visible as equal ciphertexts


def test_a_value_moved_to_another_column_does_not_decrypt(ops_db):  # noqa: F811
    populate(ops_db)
    with ops_db.begin() as s:
        s.execute(sa.text("UPDATE leads SET note = name"))
    with ops_db() as s, pytest.raises(DataError, match="leads.note does not decrypt") as info:
        s.scalars(sa.select(Lead)).one()
    assert "moved from another column" in info.value.message


def test_replies_and_leads_are_found_by_mobile_through_the_blind_index(ops_db):  # noqa: F811
    populate(ops_db)
    keys = cipher_of(ops_db.kw["bind"].dialect, "test").keys
    wanted = lookup_hash(keys, "inbound_replies.mobile", "0086 139-1234-5678", normalise_phone)
    with ops_db() as s:
        found = s.scalars(sa.select(InboundReply).where(InboundReply.mobile_hash == wanted)).all()
        assert [r.mobile for r in found] == [MOBILE]
        lead_hash = lookup_hash(keys, "leads.phone", "13912345678", normalise_phone)
        assert s.scalars(sa.select(Lead.name).where(Lead.phone_hash == lead_hash)).all() == [NAME]
        other = lookup_hash(keys, "leads.phone", "13912345679", normalise_phone)
        assert s.scalars(sa.select(Lead).where(Lead.phone_hash == other)).all() == []
        raw_hash = s.execute(sa.text("SELECT mobile_hash FROM inbound_replies")).scalar()
    assert raw_hash == wanted and "13912345678" not in raw_hash


def test_plaintext_rows_from_before_encryption_read_and_reencryption_encrypts_them(ops_db):  # noqa: F811
    with ops_db.begin() as s:     # as the older code wrote them (the migration cannot encrypt: it has no keys)
        s.execute(sa.text("INSERT INTO leads (name, phone, status, created_at) VALUES (:n, :p, 'new', :t)"),
                  {"n": NAME, "p": PHONE, "t": NOW.replace(tzinfo=None)})
    with ops_db() as s:
        assert s.scalars(sa.select(Lead.name)).one() == NAME
    cipher = cipher_of(ops_db.kw["bind"].dialect, "test")
    with ops_db.begin() as s:
        done = reencrypt(s.connection(), cipher)
    assert done["leads.name"] == 1 and done["leads.phone"] == 1
    assert all(v.startswith("lle1:") for v in raw_values(ops_db)["leads.name"])
    keys = cipher.keys
    with ops_db() as s:
        assert s.scalars(sa.select(Lead.phone)).one() == PHONE
        found = lookup_hash(keys, "leads.phone", "13912345678", normalise_phone)   # the index was filled in too
        assert s.scalars(sa.select(Lead.name).where(Lead.phone_hash == found)).all() == [NAME]
    with ops_db.begin() as s:
        assert reencrypt(s.connection(), cipher)["leads.name"] == 0    # already under the newest key


def test_a_master_key_rotation_rewraps_the_data_key_and_every_row_still_reads(ops_db):  # noqa: F811
    populate(ops_db)
    keys = cipher_of(ops_db.kw["bind"].dialect, "test").keys
    before = raw_values(ops_db)
    assert keys.rotate().version == "2"
    assert raw_values(ops_db) == before           # rows untouched: only the wrapped data key changed
    with ops_db() as s:
        assert s.scalars(sa.select(Lead.name)).one() == NAME


def test_a_connection_without_keys_refuses_to_write_or_read_c2_fields(ops_db):  # noqa: F811
    populate(ops_db)
    attach(ops_db.kw["bind"], None)
    with ops_db() as s, pytest.raises(OpsDatabaseError, match="leads.name holds personal data") as info:
        s.scalars(sa.select(Lead)).one()
    assert "Context.ops()" in info.value.hint
    with ops_db() as s:
        s.add(Lead(name="Li Lei"))
        with pytest.raises(sa.exc.StatementError, match="no keys"):
            s.flush()
