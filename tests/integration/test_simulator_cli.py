"""`lifeloop simulate` and `lifeloop advance` from the command line."""

import pytest
from typer.testing import CliRunner

from lifeloop.cli.app import app


def test_simulate_then_advance_with_a_contacts_file(tmp_path):
    runner = CliRunner()
    out = tmp_path / "bank"
    res = runner.invoke(app, ["simulate", "--out", str(out), "--customers", "300", "--days", "31", "--seed", "2"])
    assert res.exit_code == 0, res.output
    assert "300 customers" in res.output and "2024-01-31" in res.output
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("customer_id,offer,channel,treated\nC000000001,WM090,sms,true\nC000000002,WM090,sms,false\n",
                        encoding="utf-8")
    res = runner.invoke(app, ["advance", "--out", str(out), "--contacts", str(contacts)])
    assert res.exit_code == 0, res.output
    assert (out / "days" / "2024-02-01" / "transactions.parquet").exists()
    assert "2 contacts" in res.output


def test_advance_reports_bad_contacts_by_row_and_column(tmp_path):
    from lifeloop.data.simulator import SimulatedBank, simulate
    from lifeloop.errors import DataError

    out = tmp_path / "bank"
    simulate(out, customers=50, days=5, seed=1)
    with pytest.raises(DataError, match="row 1, column channel: unknown channel 'fax'"):
        SimulatedBank.open(out).advance([{"customer_id": "C000000001", "offer": "WM090", "channel": "fax",
                                          "treated": True}])


def test_advancing_a_folder_that_is_not_a_simulated_bank_says_what_to_do(tmp_path):
    from lifeloop.data.simulator import SimulatedBank
    from lifeloop.errors import DataError

    with pytest.raises(DataError) as err:
        SimulatedBank.open(tmp_path)
    assert "lifeloop simulate" in err.value.hint


@pytest.mark.parametrize("customers,days", [(1, 1), (7, 2)])
def test_a_tiny_bank_still_writes_every_canonical_extract(tmp_path, customers, days):
    from lifeloop.data.schema import TABLES
    from lifeloop.data.simulator import simulate

    result = simulate(tmp_path / "tiny", customers=customers, days=days, seed=3)
    assert all((result.out / f"{name}.parquet").exists() for name in TABLES)
    assert result.rows["customers"] == customers


def test_simulating_again_into_the_same_folder_replaces_the_previous_bank(tmp_path):
    from lifeloop.data.simulator import SimulatedBank, simulate

    out = tmp_path / "bank"
    simulate(out, customers=40, days=5, seed=1)
    SimulatedBank.open(out).advance(None)
    simulate(out, customers=30, days=4, seed=2, format="csv")
    assert not list(out.glob("*.parquet")) and not (out / "days").exists()
    assert len((out / "customers.csv").read_text(encoding="utf-8").splitlines()) == 31
