"""C3 never enters: authentication data is refused at ingest whatever the mapping renames it to.

Card numbers below are the schemes' public test numbers: 4111 1111 1111 1111 is Luhn-valid (the sum of
the doubled-and-folded digits is 30); changing its last digit to 2 makes it invalid.
"""

from __future__ import annotations

import pytest

from lifeloop.data.sensitive import AuthenticationDataError
from lifeloop.errors import ConfigError, ValidationError
from tests.factories import canonical_bank, new_context, write_canonical, write_csv
from tests.refusals import state

PAN = "4111111111111111"          # Luhn-valid test Visa
NOT_LUHN = "4111111111111112"     # same digits, wrong check digit
PIN = "739182"


def customers_mapping(tmp_path, occupation: str, extra: str = "") -> tuple:
    """A folder with every canonical table but customers, which comes from clients.csv through a mapping."""
    bank = canonical_bank()
    clients = [{**c, "card_pin": PIN if i != 1 else "", "notes": ""} for i, c in enumerate(bank.pop("customers"))]
    src = write_canonical(tmp_path / "src", bank)
    write_csv(src / "_clients.csv", clients)
    mapping = tmp_path / "mapping.yaml"
    tables = "".join(f"  {t}: {{from: {t}}}\n" for t in bank)
    sources = "".join(f"  {t}: {{file: {t}.csv}}\n" for t in bank)
    cols = ", ".join(f"{c}: {c}" for c in ("customer_id", "name", "gender", "birth_date", "branch_id", "rm_id",
                                           "open_date", "is_prospect", "risk_level"))
    mapping.write_text(f"sources:\n{sources}  clients: {{file: _clients.csv}}\ntables:\n{tables}"
                       f"  customers:\n    from: clients\n{extra}    columns: {{{cols}, occupation: {occupation}}}\n",
                       encoding="utf-8")
    return src, mapping


def test_a_mapping_that_maps_card_pin_onto_occupation_is_refused_naming_file_column_and_rows(tmp_path):
    src, mapping = customers_mapping(tmp_path, "card_pin")
    ctx = new_context(tmp_path)
    before = state(ctx)
    with pytest.raises(AuthenticationDataError) as info:
        ctx.ingest(src, mapping)
    problem = info.value.problems[0]
    assert (problem.file, problem.column, problem.row, problem.rule) == ("_clients.csv", "card_pin", 1, "c3_name")
    assert "looks like PIN" in problem.message and "2 row(s) hold a value (rows 1, 3)" in problem.message
    assert PIN not in info.value.render() and "nothing was published" in info.value.message
    assert state(ctx) == before


def test_an_unused_authentication_column_in_a_source_is_refused_too(tmp_path):
    src, mapping = customers_mapping(tmp_path, "notes")  # card_pin is in the file but mapped nowhere
    with pytest.raises(AuthenticationDataError, match="card_pin"):
        new_context(tmp_path).ingest(src, mapping)


def test_a_derived_value_named_like_a_password_is_refused_in_the_mapping(tmp_path):
    src, mapping = customers_mapping(tmp_path, "交易密码", extra="    derive: {交易密码: notes}\n")
    (src / "_clients.csv").write_text((src / "_clients.csv").read_text(encoding="utf-8").replace("card_pin", "pin_x"),
                                      encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        new_context(tmp_path).ingest(src, mapping)
    assert "looks like password or PIN (C3" in info.value.problems[0].message
    assert info.value.problems[0].field == "tables.customers.derive.交易密码"


@pytest.mark.parametrize("text, column", [
    (f"teacher, card {PAN}", "occupation"),
    ("pays with 4111-1111-1111-1111", "occupation"),
    ("Amex 3782 822463 10005 on file", "name"),
])
def test_a_free_text_column_with_a_luhn_valid_card_number_is_refused(tmp_path, text, column):
    bank = canonical_bank()
    bank["customers"][2][column] = text
    ctx = new_context(tmp_path)
    before = state(ctx)
    with pytest.raises(AuthenticationDataError) as info:
        ctx.ingest(write_canonical(tmp_path / "src", bank))
    problem = info.value.problems[0]
    assert (problem.file, problem.table, problem.row, problem.column, problem.rule) == \
        ("customers.csv", "customers", 3, column, "c3_card_number")
    assert "4111" not in info.value.render() and "3782" not in info.value.render()
    assert state(ctx) == before


def test_a_card_number_in_an_event_detail_is_refused(tmp_path):
    bank = canonical_bank()
    bank["events"] = [{"event_id": "E1", "customer_id": "C1", "event_date": "2024-03-30", "event_type": "complaint",
                       "detail": f"customer read out {PAN} on the phone"}]
    with pytest.raises(AuthenticationDataError, match="events.detail"):
        new_context(tmp_path).ingest(write_canonical(tmp_path / "src", bank))


def test_a_sixteen_digit_reference_that_fails_luhn_is_accepted(tmp_path):
    bank = canonical_bank()
    bank["customers"][2]["occupation"] = f"ref {NOT_LUHN}"
    bank["customers"][1]["occupation"] = "engineer since 2024-05-30 2024-06-30"   # dates are not card numbers
    report = new_context(tmp_path).ingest(write_canonical(tmp_path / "src", bank))
    assert report.tables["customers"] == 3


def test_a_card_number_in_the_canonical_account_column_is_accepted(tmp_path):
    bank = canonical_bank()
    for h in bank["holdings"]:
        h["account_id"] = PAN if h["account_id"] == "A3" else h["account_id"]
    bank["transactions"][3]["account_id"] = PAN
    assert new_context(tmp_path).ingest(write_canonical(tmp_path / "src", bank)).tables["holdings"] == 4


@pytest.mark.parametrize("track", [
    f";{PAN}=25121010000000000000?",                    # track 2
    f"%B{PAN}^ZHANG/SAN^2512101000000000000000000?",    # track 1
])
def test_magnetic_stripe_track_data_is_refused_in_any_text_column(tmp_path, track):
    bank = canonical_bank()
    bank["branches"][1]["region"] = track
    with pytest.raises(AuthenticationDataError) as info:
        new_context(tmp_path).ingest(write_canonical(tmp_path / "src", bank))
    problem = info.value.problems[0]
    assert (problem.file, problem.row, problem.column, problem.rule) == ("branches.csv", 2, "region", "c3_track")
    assert PAN not in info.value.render()


def test_a_canonical_file_with_a_cvv_column_is_refused_before_anything_else(tmp_path):
    bank = canonical_bank()
    for c in bank["customers"]:
        c["cvv2"] = "123"
    src = write_canonical(tmp_path / "src", bank)
    write_csv(src / "customers.csv", bank["customers"])  # with the extra column
    with pytest.raises(AuthenticationDataError) as info:
        new_context(tmp_path).ingest(src)
    assert info.value.problems[0].column == "cvv2" and "card verification code" in info.value.problems[0].message


def test_a_card_number_in_a_coded_column_is_refused_without_quoting_it(tmp_path):
    bank = canonical_bank()
    bank["customers"][0]["gender"] = PAN   # not free text: the allowed-codes check refuses it, and must not quote it
    with pytest.raises(ValidationError) as info:
        new_context(tmp_path).ingest(write_canonical(tmp_path / "src", bank))
    text = info.value.render()
    assert "<card data withheld>" in text and "4111" not in text
