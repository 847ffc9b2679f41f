"""One masking policy, every output: the tiny bank with card numbers, mobiles and ID numbers, checked where the
data leaves the process — the profile (data, text, JSON), file exports, the HTML report, manifests and the run log."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from rich.console import Console

from lifeloop.cli.insight import customer_command
from lifeloop.cli.report import report_command
from lifeloop.config.masking import masking_policy
from lifeloop.context import Context
from lifeloop.data.access import Grant, Principal
from lifeloop.execution.channels.base import Message
from lifeloop.execution.channels.files import FileChannel
from lifeloop.insight.profile import customer_profile
from tests.factories import BANK_AS_OF, canonical_bank, new_context, write_canonical

PAN = "6222020012345678"          # A1: a debit card account
PAN_2 = "6222021111222233334"     # A2: 19 digits
MOBILE, ID_NUMBER, NAME = "13812341234", "110101196005011234", "李娜"
PERSONAL = (PAN, PAN_2, MOBILE, ID_NUMBER, NAME, "lina@example.com")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("masks")
    bank = canonical_bank()
    bank["customers"][0].update(mobile=MOBILE, id_number=ID_NUMBER, email="lina@example.com")
    cards = {"A1": PAN, "A2": PAN_2}
    for table in ("holdings", "transactions"):
        for row in bank[table]:
            row["account_id"] = cards.get(row["account_id"], row["account_id"])
    context = new_context(root)
    context.ingest(write_canonical(root / "extracts", bank))
    context.run(BANK_AS_OF, ["features", "lifecycle", "segments"])
    yield context
    context.close()


def as_user(ctx, *grants):
    """The same workspace seen by a signed-in user holding ``grants`` (the CLI's way: a principal, never a flag)."""
    return Context(ctx.workspace, principal=Principal("u", "user", tuple(grants)))


def test_the_rm_sees_a_card_number_as_its_first_6_and_last_4_and_the_analyst_its_last_4(ctx):
    with as_user(ctx, Grant("rm", "RM1")) as rm_ctx:
        rm = rm_ctx.customer("C1")
    assert {h["account_id"] for h in rm["holdings"]} == {"622202******5678", "622202*********3334"}
    assert {t["account_id"] for t in rm["transactions"]} == {"622202******5678"}
    analyst = customer_profile(ctx, "C1")
    assert {h["account_id"] for h in analyst["holdings"]} == {"****5678", "****3334"}


def test_money_features_are_banded_for_the_analyst_and_exact_for_the_rm(ctx):
    # C1's own transactions: 120.00 and 3,629.50 -> an average of 1,874.75
    analyst = customer_profile(ctx, "C1")["tags"]["values"]
    with as_user(ctx, Grant("rm", "RM1")) as rm_ctx:
        rm = rm_ctx.customer("C1")["tags"]["values"]
    assert rm["avg_txn_amount_90d"] == pytest.approx(1874.75) and analyst["avg_txn_amount_90d"] == "1k-10k"
    assert rm["aum"] == 51250.5 and analyst["aum"] == "10k-100k"
    assert analyst["aum_change_pct_90d"] == rm["aum_change_pct_90d"]      # a ratio, not an amount
    assert analyst["frequency_90d"] == rm["frequency_90d"] == 2
    masked = customer_profile(ctx, "C1")["access"]["masked"]
    assert {"features.avg_txn_amount_90d", "features.aum", "features.net_flow_30d"} <= set(masked)


@pytest.mark.parametrize("as_json", [False, True])
def test_the_customer_command_shows_the_analyst_nothing_personal(ctx, capsys, as_json):
    out = Console(file=StringIO(), width=300)
    customer_command(ctx, out, "C1", as_json=as_json)
    text = out.file.getvalue() + capsys.readouterr().out
    assert "C1" in text and "李*" in text and "****5678" in text
    for value in (*PERSONAL, "51250.5", "1874.75", "50000"):
        assert value not in text


def test_the_customer_command_json_of_the_rm_cuts_the_card_number(ctx, capsys):
    with as_user(ctx, Grant("rm", "RM1")) as rm_ctx:
        customer_command(rm_ctx, Console(file=StringIO()), "C1", as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert data["attributes"]["name"] == NAME and data["attributes"]["id_number"] == "110***********1234"
    assert data["holdings"][0]["account_id"] == "622202******5678"
    assert PAN not in json.dumps(data) and PAN_2 not in json.dumps(data)


def message(i: int, rm_id: str | None) -> Message:
    return Message(dispatch_id=i, key=f"k{i}", as_of=BANK_AS_OF, customer_id="C1", strategy_id="s", wave="w",
                   channel="call", rm_id=rm_id, script="您好", customer={"name": NAME, "mobile": MOBILE})


def test_an_export_follows_the_workspaces_masking_yaml(ctx, tmp_path):
    import csv

    (ctx.config_dir / "masking.yaml").write_text("version: 1\nroles:\n  rm:\n    show: [name]\n    money: exact\n",
                                                 encoding="utf-8")
    try:
        policy = masking_policy(type(ctx.configs)(ctx.config_dir, ctx.workspace))
        channel = FileChannel("branch", tmp_path, recipient_role="rm", policy=policy)
        channel.send([message(1, "RM1")])
        with channel.written[0].open(encoding="utf-8-sig") as fh:
            [row] = list(csv.DictReader(fh))
        assert (row["name"], row["mobile"]) == (NAME, "138****1234")   # the mobile is no longer shown to RMs
        analyst = FileChannel("call", tmp_path / "a", recipient_role="analyst", policy=policy)
        analyst.send([message(2, "RM1")])
        text = analyst.written[0].read_text(encoding="utf-8-sig")
        assert NAME not in text and MOBILE not in text and "李*" in text
    finally:
        (ctx.config_dir / "masking.yaml").unlink()


def test_the_html_report_holds_no_personal_data(ctx, tmp_path):
    path = report_command(ctx, Console(file=StringIO()), tmp_path / "report.html", BANK_AS_OF, None)
    html = path.read_text(encoding="utf-8")
    assert "<html" in html.lower()
    for value in PERSONAL:
        assert value not in html


def test_manifests_and_the_run_log_hold_no_personal_values(ctx):
    lake = ctx.lake.root
    logs = [p for p in lake.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl")]
    assert any(p.name == "_runs.jsonl" for p in logs) and any(p.name == "_manifest.json" for p in logs)
    for p in logs:
        text = p.read_text(encoding="utf-8")
        for value in PERSONAL:
            assert value not in text, f"{value} in {p}"



def test_the_feature_summary_bands_the_min_and_max_of_money_tags(ctx):
    from lifeloop.cli.render import feature_summary_rows, print_feature_summary
    from lifeloop.insight.money import workspace_money_tags

    table = ctx.features(BANK_AS_OF)
    money = workspace_money_tags(ctx.configs)
    rows = {r["tag"]: r for r in feature_summary_rows(table, money)}
    assert (rows["aum"]["min"], rows["aum"]["max"], rows["aum"]["type"]) == ("<1k", "10k-100k", "money")
    assert rows["avg_txn_amount_90d"]["max"] == "1k-10k"
    assert rows["frequency_90d"]["max"] == 2 and rows["aum_change_pct_90d"]["type"] == "number"
    out = Console(file=StringIO(), width=200)
    print_feature_summary(out, table, money)
    text = out.file.getvalue()
    assert "51,250.50" not in text and "1,874.75" not in text and "10k-100k" in text


def test_a_branch_manager_sees_their_branch_as_an_rm_sees_a_book_and_the_card_number_cut(ctx):
    with as_user(ctx, Grant("branch_manager", "B1")) as manager:
        p = manager.customer("C1")
    assert p["attributes"]["name"] == NAME and p["attributes"]["id_number"] == "110***********1234"
    assert {h["account_id"] for h in p["holdings"]} == {"622202******5678", "622202*********3334"}
    from lifeloop.errors import NotFoundError

    with as_user(ctx, Grant("branch_manager", "B1")) as manager:
        with pytest.raises(NotFoundError) as other_branch:
            manager.customer("C2")          # branch B2
        with pytest.raises(NotFoundError) as unknown:
            manager.customer("C9")
    assert str(other_branch.value).replace("C2", "X") == str(unknown.value).replace("C9", "X")
