"""Scores in the strategy map: ``score('churn') >= 0.6`` in an audience rule, and the fall-back to a plain rule
on a day without the model's scores. The tiny lake of test_plan (checked there by hand): C1-C4 are in the
honeymoon, with digital shares 0.333, 0.25, 0.25, 0.25."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.errors import ConfigError
from lifeloop.models.scores import output_schema
from lifeloop.preflight import check_workspace
from lifeloop.strategy.audiences import top_share
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
