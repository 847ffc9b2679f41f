"""The real Berka data (PKDD'99 Czech bank) loads through examples/berka/mapping.yaml alone."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import BERKA, lake_fingerprint, needs_berka, new_context
from tests.factories import BERKA_AS_OF as AS_OF
from tests.factories import BERKA_MAPPING as MAPPING

pytestmark = needs_berka


@pytest.fixture(scope="module")
def berka(tmp_path_factory):
    ctx = new_context(tmp_path_factory.mktemp("berka"))
    report = ctx.ingest(BERKA, MAPPING, AS_OF)
    return ctx, report


def _sql(ctx, query: str, *params):
    import duckdb

    con = duckdb.connect()
    folder = ctx.lake.snapshot_dir("bank", AS_OF)
    for name in ("customers", "holdings", "transactions", "products", "branches"):
        con.register(name, ctx.lake.read_table(folder / f"{name}.parquet"))
    return con.execute(query, list(params)).fetchall()


def _raw(query: str):
    """A direct read of the original files, for counts the test does not take from Lifeloop."""
    import duckdb

    con = duckdb.connect()
    for name in ("account", "client", "disp", "loan", "card"):
        con.register(name, con.read_csv(str(BERKA / f"{name}.asc"), sep=";", header=True, all_varchar=True))
    con.register("trans", con.read_csv(str(BERKA / "trans.asc.gz"), sep=";", header=True, all_varchar=True))
    return con.execute(query).fetchall()


def test_berka_loads_with_exact_counts_per_table(berka):
    _, report = berka
    true_transactions = _raw("select count(*) from trans where date <= '941030'")[0][0]
    assert true_transactions == 99_999 - 1_154 == 98_845
    assert report.as_of == AS_OF
    assert report.tables == {"branches": 77, "relationship_managers": 0, "customers": 5_369, "products": 7,
                             "holdings": 79_138, "transactions": true_transactions}
    assert "transactions: 1,154 row(s) dated after 1994-10-30 were left out (rows_after_as_of: drop)" in report.warnings


def test_every_account_opened_by_the_as_of_date_has_a_snapshot_and_later_ones_have_none(berka):
    ctx, _ = berka
    opened = {r[0] for r in _raw("select account_id from account where date <= '941030'")}
    with_snapshot = {r[0] for r in _sql(ctx,
                                        "select distinct account_id from holdings where product_id like 'CURRENT%'")}
    assert len(opened) == 1_515
    assert with_snapshot == opened
    # one snapshot per account and active day, one per loan on the day it was granted, one per loan granted
    # before the as-of date with its outstanding amount on that date, one per card on its issue date
    days = _raw("select count(*) from (select distinct account_id, date from trans where date <= '941030')")[0][0]
    granted = _raw("select count(*) from loan where date <= '941030'")[0][0]
    granted_before = _raw("select count(*) from loan where date < '941030'")[0][0]
    cards = _raw("select count(*) from card where issued <= '941030 99'")[0][0]
    assert (days, granted, granted_before, cards) == (78_915, 104, 103, 16)
    assert days + granted + granted_before + cards == 79_138


def test_gender_and_birth_date_are_decoded_from_birth_number(berka):
    ctx, _ = berka
    rows = _sql(ctx, "select customer_id, gender, birth_date from customers where customer_id in ('1', '2') "
                     "order by customer_id")
    # client 1: 706213 -> month 62 - 50 = 12, a woman born 1970-12-13; client 2: 450204, a man born 1945-02-04
    assert rows == [("1", "F", dt.date(1970, 12, 13)), ("2", "M", dt.date(1945, 2, 4))]


def test_branch_is_the_district_and_city_its_name(berka):
    ctx, _ = berka
    assert _sql(ctx, "select branch_id, city from customers where customer_id = '2'") == [("1", "Hl.m. Praha")]
    assert _sql(ctx, "select name, region from branches where branch_id = '1'") == [("Hl.m. Praha", "Prague")]


def test_clients_whose_account_opens_after_the_as_of_date_are_prospects_without_an_open_date(berka):
    ctx, _ = berka
    later = _raw("select count(*) from disp d join account a using (account_id) where a.date > '941030'")[0][0]
    assert later == 3_545
    assert _sql(ctx, "select count(*) from customers where is_prospect and open_date is null") == [(later,)]
    # client 2 owns account 2, opened 1993-02-26
    assert _sql(ctx, "select is_prospect, open_date from customers where customer_id = '2'") == \
        [(False, dt.date(1993, 2, 26))]


def test_transaction_codes_become_direction_type_channel_and_initiative(berka):
    ctx, _ = berka
    rows = dict((r[0], r[1:]) for r in _sql(
        ctx, "select transaction_id, direction, txn_type, channel, counterparty_kind, customer_initiated "
             "from transactions where transaction_id in ('695247', '3585094', '3582250') or transaction_id in "
             "(select min(transaction_id) from transactions where txn_type = 'fee')"))
    assert rows["695247"] == ("credit", "cash", "counter", "other", True)        # PRIJEM VKLAD: a cash deposit
    fees = [v for k, v in rows.items() if k not in ("695247",) and v[1] == "fee"]
    assert fees and all(v[0] == "debit" and v[2] == "system" and v[4] is False for v in fees)
    by_type = dict(_sql(ctx, "select txn_type, bool_or(customer_initiated) from transactions group by 1"))
    assert by_type["interest"] is False and by_type["fee"] is False and by_type["cash"] is True
    assert _sql(ctx, "select count(*) from transactions where txn_type = 'interest'") == \
        [(_raw("select count(*) from trans where k_symbol = 'UROK' and date <= '941030'")[0][0],)]


def test_a_loan_has_its_outstanding_amount_on_the_as_of_date(berka):
    ctx, _ = berka
    # loan 4959: 80,952 granted 1994-01-05, 3,373 a month; 9 instalments due by 1994-10-30
    rows = _sql(ctx, "select snapshot_date, balance, status, maturity_date from holdings where account_id = 'L4959' "
                     "order by snapshot_date")
    assert [(d, float(b), s, m) for d, b, s, m in rows] == [
        (dt.date(1994, 1, 5), 80_952.0, "open", dt.date(1996, 1, 5)),
        (AS_OF, 80_952.0 - 9 * 3_373.0, "open", dt.date(1996, 1, 5))]


def test_reingesting_berka_changes_nothing(berka):
    ctx, first = berka
    before = lake_fingerprint(ctx)
    again = ctx.ingest(BERKA, MAPPING, AS_OF)
    assert again.unchanged and again.run_id == first.run_id
    after = lake_fingerprint(ctx)
    # only the run log grows; every published byte is the same
    assert {k: v for k, v in after.items() if k != "_runs.jsonl"} == {k: v for k, v in before.items()
                                                                        if k != "_runs.jsonl"}
