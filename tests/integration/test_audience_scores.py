"""Scores in the strategy map: ``score('churn') >= 0.6`` in an audience rule, and the fall-back to a plain rule
on a day without the model's scores. The tiny lake of test_plan (checked there by hand): C1-C4 are in the
honeymoon, with digital shares 0.333, 0.25, 0.25, 0.25."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.data.masking import role
from lifeloop.errors import ConfigError
from lifeloop.models.scores import output_schema
from lifeloop.preflight import check_workspace
from lifeloop.strategy.audiences import top_share
from lifeloop.strategy.why import explain
from tests.integration.test_plan import D, ctx  # noqa: F401 - the tiny lake

WELCOME = "audience: \"stage = 'honeymoon' AND digital_share_90d >= 0.25\""
WITH_SCORE = ("audience: \"stage = 'honeymoon' AND score('churn') >= 0.6\"\n"
              "    fallback_audience: \"stage = 'honeymoon' AND digital_share_90d >= 0.3\"")


def use(ctx, new: str) -> None:  # noqa: F811
    path = ctx.config_dir / "strategies.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(WELCOME) == 1
    path.write_text(text.replace(WELCOME, new), encoding="utf-8")


def publish_scores(ctx, scores: dict[str, float]) -> None:  # noqa: F811
    n = len(scores)
    table = pa.table({"customer_id": list(scores), "model": ["churn"] * n, "version": ["v1"] * n,
                      "score": list(scores.values()), "decile": [1] * n, "reason_1": [None] * n,
                      "reason_2": [None] * n, "reason_3": [None] * n, "reasons_zh": [None] * n,
                      "reasons_en": [None] * n}).cast(output_schema())
    ctx.lake.publish("scores", D, lambda staging: pq.write_table(table, staging / "scores.parquet"))


def welcome(ctx) -> list[tuple[str, str]]:  # noqa: F811
    [result] = ctx.run(D, ["audiences"])
    rows = pq.read_table(ctx.lake.snapshot_dir("audiences", D) / "audiences.parquet").to_pylist()
    return result, [(r["customer_id"], r["reason"]) for r in rows if r["strategy"] == "welcome"]


def test_an_audience_reads_the_days_scores_of_a_model(ctx):  # noqa: F811
    use(ctx, WITH_SCORE)
    publish_scores(ctx, {"C1": 0.7, "C2": 0.5, "C3": 0.9, "C4": 0.6, "C5": 0.99})
    result, rows = welcome(ctx)
    assert rows == [("C1", "_score__churn=0.7000, stage=honeymoon"), ("C3", "_score__churn=0.9000, stage=honeymoon"),
                    ("C4", "_score__churn=0.6000, stage=honeymoon")]   # C5 scores high but is not in the honeymoon
    manifest = ctx.lake.manifest("audiences", D)
    assert manifest["models_read"] == {"welcome": ["churn"]} and manifest["fallbacks"] == {}


def test_without_the_models_scores_for_the_day_the_strategy_falls_back_to_its_rule_and_says_so(ctx):  # noqa: F811
    use(ctx, WITH_SCORE)
    result, rows = welcome(ctx)
    assert [c for c, _ in rows] == ["C1"]                      # digital share >= 0.3: the fallback rule
    said = "strategy welcome: no scores of churn today; its fallback_audience rule selects instead"
    assert any(w.startswith(said) for w in result.warnings)
    assert ctx.lake.manifest("audiences", D)["fallbacks"]["welcome"].startswith(said)


def test_scores_of_another_model_do_not_count_and_without_a_fallback_no_one_is_selected(ctx):  # noqa: F811
    use(ctx, "audience: \"stage = 'honeymoon' AND score('churn') >= 0.6\"")
    table = pa.table({"customer_id": ["C1"], "model": ["other"], "version": ["v1"], "score": [0.9], "decile": [1],
                      **{k: [None] for k in ("reason_1", "reason_2", "reason_3", "reasons_zh", "reasons_en")}}
                     ).cast(output_schema())
    ctx.lake.publish("scores", D, lambda staging: pq.write_table(table, staging / "scores.parquet"))
    result, rows = welcome(ctx)
    assert rows == []
    assert any("no scores of churn today and no fallback_audience: it selects no one" in w for w in result.warnings)


def test_check_names_an_unknown_model_with_file_line_and_the_known_models(ctx):  # noqa: F811
    use(ctx, "audience: \"stage = 'honeymoon' AND score('chrun') >= 0.6\"")
    report = check_workspace(ctx.config_dir)
    [err] = [e for e in report.errors if "unknown model" in e.message]
    assert err.file == "config/strategies.yaml" and err.line is not None and err.rule == "strategy welcome"
    assert "unknown model 'chrun'" in err.message and "did you mean 'churn'" in err.message
    assert "models declared in config/models.yaml: churn" in err.hint
    with pytest.raises(ConfigError, match="unknown model 'chrun'"):    # the run's preflight refuses, writing nothing
        ctx.run(D, ["audiences"])
    assert not ctx.lake.exists("audiences", D)


def test_check_refuses_uplift_of_a_classifier_and_warns_of_a_model_rule_without_fallback(ctx):  # noqa: F811
    use(ctx, "audience: \"stage = 'honeymoon' AND uplift('churn') > 0.01\"")
    report = check_workspace(ctx.config_dir)
    assert any("model 'churn' is a classifier model; uplift() reads an uplift model" in e.message
               for e in report.errors)
    use_again = ctx.config_dir / "strategies.yaml"
    use_again.write_text(use_again.read_text(encoding="utf-8").replace("uplift('churn') > 0.01",
                                                                        "score('churn') > 0.5"), encoding="utf-8")
    report = check_workspace(ctx.config_dir)
    assert report.errors == []
    assert any("reads model(s) churn and has no fallback_audience" in w.message for w in report.warnings)


TOP = ("audience: \"stage = 'honeymoon'\"\n"
       "    top: {share: 0.5, by: \"score('churn')\"}")


def test_a_ranking_rule_keeps_the_top_share_of_the_audience_by_a_models_score(ctx):  # noqa: F811
    use(ctx, TOP)
    publish_scores(ctx, {"C1": 0.7, "C2": 0.5, "C3": 0.9, "C4": 0.6, "C5": 0.99})
    _, rows = welcome(ctx)
    assert [c for c, _ in rows] == ["C1", "C3"]          # honeymoon: C1-C4; the top half by score: 0.9 and 0.7
    assert ctx.lake.manifest("audiences", D)["models_read"] == {"welcome": ["churn"]}


def test_without_the_scores_the_ranking_is_not_applied_and_the_run_says_so(ctx):  # noqa: F811
    use(ctx, TOP)
    result, rows = welcome(ctx)
    assert [c for c, _ in rows] == ["C1", "C2", "C3", "C4"]
    assert any("the top 50% by score('churn') is not applied: the whole audience is selected" in w
               for w in result.warnings)


def test_check_locates_an_unknown_model_in_a_ranking_rule(ctx):  # noqa: F811
    use(ctx, TOP.replace("score('churn')", "uplift('wealth')"))
    [err] = [e for e in check_workspace(ctx.config_dir).errors if "unknown model" in e.message]
    assert err.field == "strategies[0].top.by" and err.line is not None and "unknown model 'wealth'" in err.message


def test_top_share_ranks_by_value_then_customer_and_leaves_out_rows_without_one():
    rows = pa.table({"customer_id": ["C1", "C2", "C3", "C4", "C5"], "_s0": [0.2, None, 0.5, 0.5, 0.1]})
    assert top_share(rows, "_s0", 0.5)["customer_id"].to_pylist() == ["C3", "C4"]     # 4 ranked: the top 2
    assert top_share(rows, "_s0", 0.1)["customer_id"].to_pylist() == ["C3"]           # rounded up: at least one


# -- a customer's own value of a success in arbitration (expected.value_by: CLV as arbitration value) -----------

VALUED = WELCOME + "\n    expected: {uplift: 0.01, value: 100, value_by: \"score('churn') * 1000\"}"


def planned(ctx):  # noqa: F811
    results = ctx.run(D, ["audiences", "plan"])
    lists = pq.read_table(ctx.lake.snapshot_dir("lists", D) / "lists.parquet").to_pylist()
    return results, {r["customer_id"]: r for r in lists if r["strategy"] == "welcome"}


def test_each_customers_value_by_sets_their_expected_value_in_the_plan_and_why_replays_it(ctx):  # noqa: F811
    use(ctx, VALUED)
    publish_scores(ctx, {"C1": 0.7, "C3": 0.9, "C4": 0.6})
    _, rows = planned(ctx)
    audience = pq.read_table(ctx.lake.snapshot_dir("audiences", D) / "audiences.parquet").to_pylist()
    assert {r["customer_id"]: r["value"] for r in audience if r["strategy"] == "welcome"} == {
        "C1": 700.0, "C2": None, "C3": 900.0, "C4": 600.0}
    # by hand: uplift 0.01 x the customer's value - sms 0.05; C2 has no score: the configured 100
    assert rows["C1"]["status"] == "contact" and rows["C1"]["expected_value"] == pytest.approx(6.95, abs=1e-9)
    assert rows["C4"]["dropped_by"] is not None          # one contact a day: outflow (0.05 x 2000 - 20 = 80) first
    for viewer, worth, value, best in (("branch_manager", 700.0, pytest.approx(6.95, abs=1e-9),
                                        pytest.approx(0.01 * 700 - 0.05, abs=1e-9)),   # sms beats rm (cost 20)
                                       ("analyst", "<1k", "<1k", "<1k")):              # money about the customer
        why = explain(ctx, "C1", D, viewer=role(viewer))
        [welcome] = [c for c in why["decisions"] if c["strategy"] == "welcome"]
        sms = next(v for v in welcome["values"] if v["channel"] == "sms")
        assert (sms["value_of_success"], sms["expected_value"], welcome["best_value"]) == (worth, value, best)


def test_value_by_puts_the_more_valuable_customer_first_in_arbitration():
    import yaml

    from lifeloop.config.contact_policy import ContactPolicy
    from lifeloop.config.strategies import StrategiesConfig
    from lifeloop.strategy import arbitration, learning, plan
    from tests.integration.test_plan import POLICY, STRATEGIES

    config = StrategiesConfig.model_validate(yaml.safe_load(STRATEGIES.replace(WELCOME, VALUED)))
    policy = ContactPolicy.model_validate(yaml.safe_load(POLICY))
    n = 3
    audiences = pa.table({"customer_id": ["A", "B", "C"], "strategy": ["welcome"] * n, "wave": ["w1"] * n,
                          "rm_id": ["RM1"] * n, "reason": ["r"] * n, "cell": pa.nulls(n, pa.string()),
                          "value": pa.array([50.0, 5000.0, None], pa.float64())})
    # by hand, the first wave goes by sms (0.05 a message): uplift 0.01 x the customer's value - 0.05; C: 100
    want = {"A": 0.01 * 50 - 0.05, "B": 0.01 * 5000 - 0.05, "C": 0.01 * 100 - 0.05}
    for values in (None, learning.learned_values(config, policy)):    # the priors, and a learned-values table
        cands = plan.candidates(audiences, config, policy, values)
        got = dict(zip(cands["customer_id"].to_pylist(), cands["best_value"].to_pylist(), strict=True))
        assert got == {c: pytest.approx(v, abs=1e-9) for c, v in want.items()}
        ordered = arbitration.order(cands, policy.arbitration)
        assert [cands["customer_id"][i].as_py() for i in ordered] == ["B", "C", "A"]


def test_without_the_scores_everyone_is_worth_the_configured_value_and_the_run_says_so(ctx):  # noqa: F811
    use(ctx, VALUED)
    results, rows = planned(ctx)
    assert rows["C1"]["expected_value"] == pytest.approx(0.01 * 100 - 0.05, abs=1e-9)
    said = "strategy welcome: no scores of churn today; every customer's value of a success is expected.value (100)"
    assert any(said in w for r in results for w in r.warnings)


def test_check_locates_a_bad_value_by(ctx):  # noqa: F811
    use(ctx, VALUED.replace("score('churn') * 1000", "score('chrun') * 1000"))
    report = check_workspace(ctx.config_dir)
    [err] = [e for e in report.errors if "unknown model 'chrun'" in e.message]
    assert err.field == "strategies[0].expected.value_by" and err.line is not None and err.rule == "strategy welcome"
