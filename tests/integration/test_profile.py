"""The customer profile on the tiny bank: masked by role, an RM's own book only, every part present."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from lifeloop.cli.insight import customer_command
from lifeloop.context import Context
from lifeloop.data.access import Grant, Principal
from lifeloop.errors import NotFoundError
from lifeloop.insight.profile import customer_profile
from tests.factories import BANK_AS_OF, canonical_bank, new_context, write_canonical


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("profile")
    bank = canonical_bank()
    bank["customers"][0].update(mobile="13812341234", id_number="110101196005011234", email="lina@example.com")
    context = new_context(root)
    # three customers: clusters need k <= customers - 1
    cfg = context.config_dir / "clusters.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("k: {min: 3, max: 8}", "k: {min: 2, max: 2}"),
                   encoding="utf-8")
    context.ingest(write_canonical(root / "extracts", bank))
    context.run(BANK_AS_OF, ["features", "lifecycle", "segments", "clusters"])
    yield context
    context.close()


@pytest.fixture(scope="module")
def as_rm(ctx):
    """The same workspace as relationship manager RM1 (C1 is in their book; C2 and C3 are not)."""
    with Context(ctx.workspace, principal=Principal("rm1", "RM one", (Grant("rm", "RM1"),))) as context:
        yield context


def test_an_analyst_sees_the_whole_picture_with_personal_data_masked(ctx):
    p = customer_profile(ctx, "C1")
    a = p["attributes"]
    assert (a["name"], a["mobile"], a["id_number"], a["email"], a["birth_date"]) == (
        "李*", "138****1234", "110***********1234", "l***@example.com", 1960)
    assert a["city"] is None or isinstance(a["city"], str)
    # holdings: the latest snapshot of each account (A1 has two), short numbers fully hidden, balances as bands
    assert [(h["account_id"], h["product_id"], h["snapshot_date"], h["balance"]) for h in p["holdings"]] == [
        ("**", "CUR", dt.date(2024, 3, 31), "1k-10k"), ("**", "TD1Y", dt.date(2024, 3, 31), "10k-100k")]
    assert p["holdings"][1]["product_type"] == "time_deposit"
    # recent transactions newest first
    assert [t["transaction_id"] for t in p["transactions"]] == ["T5", "T3", "T2", "T1"]
    assert p["transactions"][1]["amount"] == "1k-10k"
    assert p["stage"]["stage"] and [h["as_of"] for h in p["stage_history"]] == [BANK_AS_OF]
    assert p["segments"]["tier"] == "potential"       # 1,250.50 + 50,000 of AUM
    assert p["cluster"]["cluster_id"] >= 1 and p["cluster"]["name"].startswith("cluster ")
    assert p["tags"]["values"]["aum"] == "10k-100k" and p["tags"]["values"]["products_held"] == 2
    assert p["access"]["role"] == "analyst" and "customers.id_number" in p["access"]["masked"]


def test_a_relationship_manager_sees_their_own_customer_unmasked_except_the_id_number(as_rm):
    p = as_rm.customer("C1")
    assert p["attributes"]["name"] == "李娜" and p["attributes"]["mobile"] == "13812341234"
    assert p["attributes"]["id_number"] == "110***********1234"
    assert p["holdings"][1]["balance"] == 50000.0 and p["tags"]["values"]["aum"] == 51250.5
    assert p["access"]["masked"] == ["customers.id_number"]


def test_a_relationship_manager_gets_the_same_refusal_for_another_book_and_for_a_customer_that_does_not_exist(
        as_rm):
    with pytest.raises(NotFoundError) as other:
        as_rm.customer("C2")      # exists, no RM
    with pytest.raises(NotFoundError) as missing:
        as_rm.customer("C999")
    assert other.value.message.replace("C2", "X") == missing.value.message.replace("C999", "X")
    assert other.value.message == "no customer 'C2' among those you may see"


def test_a_lower_case_customer_number_gets_did_you_mean(ctx):
    with pytest.raises(NotFoundError) as err:
        customer_profile(ctx, "c1")
    assert err.value.message == "no customer 'c1' as of 2024-03-31; did you mean 'C1'?"
    assert "case-sensitive" in err.value.hint


def test_a_relationship_manager_is_offered_only_their_own_customers_and_another_book_looks_unknown(ctx, as_rm):
    with pytest.raises(NotFoundError) as own:
        as_rm.customer("c1")
    assert own.value.message == "no customer 'c1' among those you may see; did you mean 'C1'?"
    with pytest.raises(NotFoundError) as analyst:   # an analyst asking for c2 is pointed to C2 ...
        customer_profile(ctx, "c2")
    assert analyst.value.message.endswith("did you mean 'C2'?")
    with pytest.raises(NotFoundError) as other:     # ... an RM is not: C2 is in no book of theirs
        as_rm.customer("c2")
    with pytest.raises(NotFoundError) as missing:
        as_rm.customer("c7")
    assert other.value.message == "no customer 'c2' among those you may see"
    assert other.value.message.replace("c2", "X") == missing.value.message.replace("c7", "X")
    assert other.value.hint == missing.value.hint


def test_an_unknown_customer_is_named_in_the_error(ctx):
    with pytest.raises(NotFoundError, match="no customer 'C999' as of 2024-03-31"):
        customer_profile(ctx, "C999")


def test_compliance_sees_the_masked_profile_until_they_unmask_it_for_a_reason(ctx):
    with Context(ctx.workspace, principal=Principal("cmp", "compliance", (Grant("compliance"),))) as officer:
        p = officer.customer("C1")
        assert p["attributes"]["id_number"] == "110***********1234" and p["access"]["unmasked"] == []
        officer.unmask("C1", reason="complaint 2024-117", fields=["id_number"], minutes=5)
        p = officer.customer("C1")
    assert p["attributes"]["id_number"] == "110101196005011234" and p["attributes"]["mobile"] == "138****1234"
    assert p["tags"]["values"]["aum"] == "10k-100k"  # money stays banded: only the ID number was unmasked
    assert p["access"]["unmasked"] == ["id_number"] and "customers.id_number" not in p["access"]["masked"]


def test_the_customer_command_prints_json_a_web_page_can_read(ctx, capsys):
    from rich.console import Console

    customer_command(ctx, Console(), "C1", as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert data["attributes"]["name"] == "李*" and data["as_of"] == "2024-03-31"
    customer_command(ctx, Console(width=120, record=True), "C1")
