"""`lifeloop evaluate --from-file`: a campaign run elsewhere, one row per customer, read and checked with located
errors."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.errors import ValidationError
from lifeloop.review.from_file import evaluate_file
from lifeloop.review.render import evaluation_json, print_evaluation


def write_csv(path, rows, header="customer_id,cell,bought,aum_change,aum_before"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def campaign_rows(per_arm=4):
    """ctl: 1 of 4 bought; sms: 2 of 4; rm_call: 3 of 4 (per block of four customers)."""
    rows, i = [], 0
    for arm, buyers, base in (("ctl", 1, 100), ("sms", 2, 150), ("rm_call", 3, 300)):
        for k in range(per_arm):
            i += 1
            rows.append(f"C{i:04d},{arm},{1 if k % 4 < buyers else 0},{base + 10 * (k % 5)},{1000 + 7 * k}")
    return rows


def test_a_campaign_csv_is_evaluated_arm_by_arm_against_the_control(tmp_path):
    path = write_csv(tmp_path / "results.csv", campaign_rows(40))
    ev = evaluate_file(path, arm="cell", control="ctl", outcomes=["bought"], money=["aum_change"],
                       pre="aum_before", cost_per_contact=2.0, holdout=1 / 3)
    assert ev.arms == {"ctl": 40, "rm_call": 40, "sms": 40}
    bought = ev.outcomes[0]
    assert [a.mean for a in bought.arms] == [0.25, 0.75, 0.5]
    assert [(c.arm, round(c.uplift.estimate, 12)) for c in bought.versus_control] == [("rm_call", 0.5), ("sms", 0.25)]
    money = ev.outcomes[1]
    assert money.money and money.kind == "amount"
    # every arm's aum_change cycles base + 0,10,20,30,40: rm_call - ctl = 200 per customer x 40 = 8,000
    assert money.versus_control[0].incremental == pytest.approx(8000)
    assert money.versus_control[0].roi == pytest.approx((8000 - 80) / 80)
    assert ev.sample_ratio is not None and not ev.sample_ratio.mismatch
    doc = evaluation_json(ev)
    assert json.loads(json.dumps(doc)) == doc


def test_a_parquet_file_with_boolean_outcomes_reads_the_same_as_csv(tmp_path):
    table = pa.table({"cell": ["ctl"] * 30 + ["sms"] * 30,
                      "bought": [i < 6 for i in range(30)] + [i < 12 for i in range(30)]})
    pq.write_table(table, tmp_path / "results.parquet")
    ev = evaluate_file(tmp_path / "results.parquet", arm="cell", control="ctl", outcomes=["bought"])
    assert [a.successes for a in ev.outcomes[0].arms] == [6, 12]
    assert ev.outcomes[0].versus_control[0].uplift.estimate == pytest.approx(0.2)


def test_text_flags_and_thousands_separators_are_read_as_numbers(tmp_path):
    rows = [f'ctl,{"yes" if i < 3 else "no"},"1,{i:03d}.50"' for i in range(10)]
    rows += [f'sms,{"true" if i < 6 else "false"},"2,{i:03d}.50"' for i in range(10)]
    path = write_csv(tmp_path / "r.csv", rows, header="cell,bought,fee")
    ev = evaluate_file(path, arm="cell", control="ctl", outcomes=["bought", "fee"], min_per_arm=10)
    assert ev.outcomes[0].arms[0].successes == 3 and ev.outcomes[0].arms[1].successes == 6
    assert ev.outcomes[1].versus_control[0].uplift.estimate == pytest.approx(1000.0)


def test_missing_columns_are_named_with_a_did_you_mean(tmp_path):
    path = write_csv(tmp_path / "results.csv", campaign_rows(40))
    with pytest.raises(ValidationError) as err:
        evaluate_file(path, arm="cell", control="ctl", outcomes=["bougth", "fee_income"])
    text = str(err.value)
    assert "2 column(s) missing: bougth, fee_income" in text
    assert "results.csv, column bougth: column not found (did you mean 'bought'?)" in text
    assert "the file has: customer_id, cell, bought, aum_change, aum_before" in text


def test_non_numeric_outcomes_are_reported_with_their_row_numbers(tmp_path):
    rows = campaign_rows(40)
    rows[4] = rows[4].replace(",150,", ",n/a,").replace(",140,", ",n/a,")  # 5th data row: aum_change unreadable
    rows[9] = "C0010,ctl,,100,1000"  # 10th data row: bought is empty
    rows[11] = "C0012,ctl,0,100,1 000"  # 12th data row: a pre-period value with a space inside
    path = write_csv(tmp_path / "results.csv", rows)
    with pytest.raises(ValidationError) as err:
        evaluate_file(path, arm="cell", control="ctl", outcomes=["bought"], money=["aum_change"], pre="aum_before")
    e = err.value
    assert e.total == 3
    located = {(p.row, p.column): p.message for p in e.problems}
    assert located == {(10, "bought"): "empty value", (5, "aum_change"): "'n/a' is not a number",
                       (12, "aum_before"): "'1 000' is not a number"}
    assert all(p.file == "results.csv" for p in e.problems)


def test_a_control_value_that_does_not_occur_lists_the_arms_found(tmp_path):
    path = write_csv(tmp_path / "results.csv", campaign_rows(40))
    with pytest.raises(ValidationError) as err:
        evaluate_file(path, arm="cell", control="control", outcomes=["bought"])
    text = str(err.value)
    assert "the control value 'control' does not occur in column cell" in text
    assert "arms found: ctl (40), rm_call (40), sms (40)" in text


def test_arms_with_fewer_customers_than_the_minimum_are_refused_by_name(tmp_path):
    rows = campaign_rows(40)[:40] + campaign_rows(40)[40:52] + campaign_rows(40)[80:]
    path = write_csv(tmp_path / "results.csv", rows)
    with pytest.raises(ValidationError) as err:
        evaluate_file(path, arm="cell", control="ctl", outcomes=["bought"])
    assert "1 arm(s) have fewer than 30 customers" in err.value.message
    assert [p.message for p in err.value.problems] == ["arm 'sms' has 12 customer(s)"]


def test_rows_without_an_arm_are_located(tmp_path):
    rows = campaign_rows(40)
    rows[2] = "C0003,,1,100,1000"
    path = write_csv(tmp_path / "results.csv", rows)
    with pytest.raises(ValidationError) as err:
        evaluate_file(path, arm="cell", control="ctl", outcomes=["bought"])
    assert [(p.row, p.column, p.message) for p in err.value.problems] == [(3, "cell", "no arm")]


def test_a_holdout_share_outside_zero_and_one_is_refused(tmp_path):
    path = write_csv(tmp_path / "results.csv", campaign_rows(40))
    with pytest.raises(ValidationError, match="--holdout 10.0 is not a share"):
        evaluate_file(path, arm="cell", control="ctl", outcomes=["bought"], holdout=10.0)


def test_the_terminal_tables_show_each_comparison(tmp_path):
    from rich.console import Console

    path = write_csv(tmp_path / "results.csv", campaign_rows(40))
    ev = evaluate_file(path, arm="cell", control="ctl", outcomes=["bought"], money=["aum_change"],
                       holdout=0.6, cost_per_contact=1.0)
    console = Console(width=160, record=True)
    print_evaluation(console, ev)
    text = console.export_text()
    assert "MISMATCH" in text  # 40 of 120 in control against a planned 60%, 40 in each arm against 24
    assert "ctl 33.33% vs 60.00%, rm_call 33.33% vs 20.00%, sms 33.33% vs 20.00%" in text
    assert "+50.00pp" in text and "+25.00pp" in text and "rm_call" in text and "sms" in text


def test_infinite_or_missing_values_in_a_parquet_file_are_located(tmp_path):
    fee = [float(i) for i in range(60)]
    fee[7], fee[40] = float("inf"), None
    pq.write_table(pa.table({"cell": ["ctl"] * 30 + ["sms"] * 30, "fee": fee}), tmp_path / "r.parquet")
    with pytest.raises(ValidationError) as err:
        evaluate_file(tmp_path / "r.parquet", arm="cell", control="ctl", outcomes=["fee"])
    assert [(p.row, p.message) for p in err.value.problems] == [(8, "inf is not a number"), (41, "empty value")]


def test_an_infinite_value_in_a_csv_is_not_taken_for_a_number(tmp_path):
    rows = [f"ctl,{i}" for i in range(30)] + [f"sms,{i}" for i in range(30)]
    rows[5] = "ctl,inf"
    path = write_csv(tmp_path / "r.csv", rows, header="cell,fee")
    with pytest.raises(ValidationError) as err:
        evaluate_file(path, arm="cell", control="ctl", outcomes=["fee"])
    assert [(p.row, p.message) for p in err.value.problems] == [(6, "'inf' is not a number")]
