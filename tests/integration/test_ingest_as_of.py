"""An inferred as-of date after today, or far after the previous batch, is refused unless --as-of is given."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.errors import IngestError, LifeloopError
from tests.factories import BANK_AS_OF, canonical_bank, new_context, write_canonical
from tests.refusals import state

TODAY = dt.date(2024, 4, 15)   # injected: the day the extract arrives


def with_dates(txn_dates=None, snapshot_dates=None):
    """The tiny bank with some transactions' and holdings' dates replaced (by index)."""
    tables = canonical_bank()
    for i, d in (txn_dates or {}).items():
        tables["transactions"][i]["txn_date"] = d
    for i, d in (snapshot_dates or {}).items():
        tables["holdings"][i]["snapshot_date"] = d
    return tables


def test_a_year_typo_in_a_first_extract_is_refused_naming_the_row_and_nothing_is_published(tmp_path):
    ctx = new_context(tmp_path)
    before = state(ctx)
    src = write_canonical(tmp_path / "src", with_dates({3: "2034-07-18"}))   # T4's 2024 typed as 2034
    with pytest.raises(IngestError) as info:
        ctx.ingest(src, today=TODAY)
    err = info.value
    assert err.message == ("the batch's as-of date would be 2034-07-18, inferred from its latest dated row, which is "
                           "after today (2024-04-15); nothing was published. 1 row(s) are dated after 2024-04-15")
    assert [str(p) for p in err.problems] == [
        "transactions.csv, row 4, column txn_date: 2034-07-18 is after 2024-04-15"]
    assert err.hint == ("correct the dates of the rows above (a typo in the year?), or pass --as-of DATE if "
                        "2034-07-18 is really meant (--as-of 2034-07-18)")
    assert state(ctx) == before and ctx.lake.dates("bank") == []


def test_the_same_extract_with_an_explicit_as_of_is_published_as_asked(tmp_path):
    ctx = new_context(tmp_path)
    src = write_canonical(tmp_path / "src", with_dates({3: "2034-07-18"}))
    report = ctx.ingest(src, as_of=dt.date(2034, 7, 18), today=TODAY)
    assert report.as_of == dt.date(2034, 7, 18)


def test_today_itself_is_a_plausible_as_of(tmp_path):
    ctx = new_context(tmp_path)
    assert ctx.ingest(write_canonical(tmp_path / "src"), today=BANK_AS_OF).as_of == BANK_AS_OF


def test_more_than_31_days_after_the_previous_batch_is_refused_naming_the_latest_rows_first(tmp_path):
    ctx = new_context(tmp_path)
    ctx.ingest(write_canonical(tmp_path / "first"), today=TODAY)
    before = state(ctx)
    later = with_dates({0: "2024-05-02", 1: "2024-05-03", 2: "2024-04-30"},
                       {1: "2024-05-02", 2: "2024-05-02", 3: "2024-05-02"})
    for t in later["transactions"]:
        t["transaction_id"] += "b"
    src = write_canonical(tmp_path / "second",
                          {"holdings": later["holdings"][1:], "transactions": later["transactions"]})
    with pytest.raises(IngestError) as info:
        ctx.ingest(src, today=dt.date(2024, 6, 1))
    err = info.value
    assert err.message.startswith("the batch's as-of date would be 2024-05-03, inferred from its latest dated row, "
                                  "which is 33 days after the previous batch (2024-03-31; at most 31 expected)")
    assert err.total == 5   # four rows on 2024-05-02 or 03 (holdings 3, transactions 2); T3b on 04-30 is not after
    # 2024-05-01; the latest row first, then the first few of the rest (capped at five)
    assert str(err.problems[0]) == \
        "transactions.csv, row 2, column txn_date: 2024-05-03 is after 2024-05-01"
    assert len(err.problems) == 5 and all("is after 2024-05-01" in p.message for p in err.problems)
    assert "pass --as-of DATE" in err.hint
    assert state(ctx) == before
    assert ctx.ingest(src, as_of=dt.date(2024, 5, 3), today=dt.date(2024, 6, 1)).as_of == dt.date(2024, 5, 3)


def test_a_batch_within_31_days_of_the_previous_one_is_published(tmp_path):
    ctx = new_context(tmp_path)
    ctx.ingest(write_canonical(tmp_path / "first"), today=TODAY)
    new = dict(canonical_bank()["transactions"][0], transaction_id="T9", txn_date="2024-05-01")
    report = ctx.ingest(write_canonical(tmp_path / "second", {"transactions": [new]}), today=dt.date(2024, 5, 2))
    assert report.as_of == dt.date(2024, 5, 1)


def test_the_cli_refuses_a_year_in_the_future_with_the_row_and_the_option(tmp_path):
    ctx = new_context(tmp_path)
    before = state(ctx)
    src = write_canonical(tmp_path / "src", with_dates({3: "2999-07-18"}))   # after any real today
    result = CliRunner().invoke(app, ["-w", str(ctx.workspace), "ingest", str(src)])
    assert result.exit_code == 1 and isinstance(result.exception, LifeloopError)
    text = str(result.exception)
    assert "row 4, column txn_date: 2999-07-18 is after" in text and "pass --as-of DATE" in text
    assert state(ctx) == before
