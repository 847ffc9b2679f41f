"""Selection cells (模型组 vs 非模型组): cells that select their own customers from one audience, one shared holdout.

The map: cell ``model`` selects ``score('churn') >= 0.6``, cell ``rule`` selects ``stage = 'declining'``; a
customer goes to the first listed cell whose select is true, and the strategy's one holdout draw (the same
hash whatever the cell) decides treated or control, so control rows carry the cell they would have been in.
"""

from __future__ import annotations

import random
import textwrap

import numpy as np
import pyarrow as pa
import pytest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from lifeloop.config.loader import load_yaml, validate_model
from lifeloop.config.strategies import StrategiesConfig, selection_cells
from lifeloop.errors import ConfigError, RuleError
from lifeloop.review.lake_evaluation import review_table, uplift_difference, uplift_interval
from lifeloop.strategy.audiences import first_wave_query, first_waves
from lifeloop.strategy.checks import check_audiences, compile_audiences
from lifeloop.strategy.history import History
from lifeloop.strategy.holdout import assign_cells, draws
from lifeloop.strategy.plan import make_lists
from tests.fixtures.outcomes_tables import AS_OF, rows, table
from tests.fixtures.outcomes_tables import config as review_config
from tests.fixtures.outcomes_tables import strategy as review_strategy
from tests.unit.strategy_factories import D, config, consent_all, policy, strategy

FILE = "config/strategies.yaml"
MAP = """\
version: 1
holdout_salt: s
strategies:
  - id: churn_warning
    name: {zh: 流失预警, en: Churn warning}
    owner: hq
    objective: {kind: customers, metric: retention_rate, window_days: 30}
    scenario: {kind: lifecycle}
    audience: "aum >= 1000"
    offer: {code: CARE}
    channels: [sms]
    scripts:
      sms: {zh: "您好", en: "Hello"}
    waves:
      - {id: first, day: 0, channel: sms}
    holdout: 0.2
    start: 2024-01-01
    cells:
"""
SELECT = [{"id": "model", "select": "score('churn') >= 0.6"}, {"id": "rule", "select": "stage = 'declining'"}]
COLUMNS = {"customer_id": "VARCHAR", "aum": "DOUBLE", "stage": "VARCHAR"}
MODELS = {"churn": "churn"}


def load(cells: str) -> StrategiesConfig:
    doc = load_yaml(FILE, text=MAP + textwrap.indent(textwrap.dedent(cells), "      "))
    return validate_model(StrategiesConfig, doc)


def refused(cells: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load(cells)
    return err.value


# ------------------------------------------------------------------------------------------ the map
def test_a_map_with_a_model_cell_and_a_rule_cell_loads():
    cfg = load("""\
        - {id: model, select: "score('churn') >= 0.6"}
        - {id: rule, select: "stage = 'declining'"}
    """)
    s = cfg.strategies[0]
    assert selection_cells(s) and [(c.id, c.select, c.share) for c in s.cells] == [
        ("model", "score('churn') >= 0.6", None), ("rule", "stage = 'declining'", None)]


@pytest.mark.parametrize(("cells", "line", "field", "words"), [
    ("""\
        - {id: model, select: "score('churn') >= 0.6", share: 0.5}
        - {id: rule, select: "stage = 'declining'"}
     """, 19, "strategies[0].cells[0].share", "takes no share"),
    ("""\
        - {id: model, select: "score('churn') >= 0.6"}
        - {id: rule, share: 1}
     """, 20, "strategies[0].cells[1]", "has no select"),
    ("""\
        - {id: model, select: "score('churn') >= 0.6", waves: [first]}
        - {id: rule, select: "stage = 'declining'"}
     """, 19, "strategies[0].cells[0].waves", "remove waves"),
    ("""\
        - {id: model, select: "score('churn') >= 0.6"}
     """, 18, "strategies[0].cells", "two or more"),
    ("""\
        - {id: model, select: "score('churn') >= 0.6"}
        - {id: model, select: "stage = 'declining'"}
     """, 20, "strategies[0].cells[1].id", "used twice"),
])
def test_selection_cells_that_make_no_sense_are_refused_with_file_line_and_field(cells, line, field, words):
    err = refused(cells)
    text = str(err) + " ".join(str(p) for p in err.problems)
    assert words in text
    assert any(p.field == field and p.line == line for p in err.problems), [(p.field, p.line) for p in err.problems]


def test_a_share_cell_without_a_share_is_refused():
    err = refused("""\
        - {id: a}
        - {id: b, share: 1}
    """)
    assert any(p.field == "strategies[0].cells[0].share" for p in err.problems)


def test_a_select_rule_is_checked_like_an_audience_and_located_at_its_field():
    s = strategy("churn_warning", cells=[SELECT[0], {"id": "rule", "select": "stag = 'declining'"}])
    errors, _ = check_audiences(config(s), COLUMNS, D, models=MODELS)
    assert [e.field for e in errors] == ["strategies[0].cells[1].select"]
    assert "stag" in errors[0].message and "stage" in (errors[0].message + (errors[0].hint or ""))
    with pytest.raises(RuleError) as err:
        compile_audiences(config(s), COLUMNS, D, models=MODELS, scored={"churn"})
    assert err.value.problems[0].field == "strategies[0].cells[1].select"
    bad_model = strategy("churn_warning", cells=[{"id": "model", "select": "score('chrun') >= 0.6"}, SELECT[1]])
    errors, _ = check_audiences(config(bad_model), COLUMNS, D, models=MODELS)
    assert errors[0].field == "strategies[0].cells[0].select" and "did you mean 'churn'" in errors[0].message


# ------------------------------------------------------------------------------------------ the audience
def audience(scores: dict[str, float | None], stages: dict[str, str], scored: set[str] | None = None):
    """The first waves of the churn strategy over an in-memory base, through DuckDB."""
    import duckdb

    s = strategy("churn_warning", audience="aum >= 1000", cells=SELECT, holdout=0.2)
    cfg = config(s)
    trees = compile_audiences(cfg, COLUMNS, D, models=MODELS, scored={"churn"} if scored is None else scored)
    ids = sorted(stages)
    base = pa.table({"customer_id": ids, "rm_id": ["RM1"] * len(ids), "aum": [5000.0] * len(ids),
                     "stage": [stages[c] for c in ids], "_score__churn": [scores.get(c) for c in ids]})
    con = duckdb.connect()
    con.register("base", base)
    q = first_wave_query(cfg, trees, "base", D, {**COLUMNS, "_score__churn": "DOUBLE"})
    wide = con.sql(q.sql(dialect="duckdb")).to_arrow_table()
    return first_waves(wide, cfg, D), trees["churn_warning"]


def test_each_customer_goes_to_the_first_cell_whose_selection_is_true_and_nobody_else_enters():
    found, _ = audience({"A": 0.9, "B": 0.9, "C": 0.1, "D": 0.1, "E": None},
                        {"A": "declining", "B": "growing", "C": "declining", "D": "growing", "E": "declining"})
    assert dict(zip(found["customer_id"].to_pylist(), found["cell"].to_pylist(), strict=True)) == {
        "A": "model", "B": "model", "C": "rule", "E": "rule"}


def test_a_model_cell_without_scores_today_selects_no_one_and_says_so():
    found, tree = audience({}, {"A": "declining", "B": "growing"}, scored=set())
    assert dict(zip(found["customer_id"].to_pylist(), found["cell"].to_pylist(), strict=True)) == {"A": "rule"}
    assert "cell model" in tree.meta["fallback"] and "selects no one" in tree.meta["fallback"]


# ------------------------------------------------------------------------------------------ one shared holdout
def audiences_table(cells: dict[str, str]) -> pa.Table:
    ids = sorted(cells)
    return pa.table({"customer_id": ids, "strategy": ["churn_warning"] * len(ids), "wave": ["w1"] * len(ids),
                     "rm_id": ["RM1"] * len(ids), "reason": ["test"] * len(ids), "cell": [cells[c] for c in ids]})


def plan(cells: dict[str, str], holdout: float = 0.3) -> pa.Table:
    s = strategy("churn_warning", cells=SELECT, holdout=holdout)
    ids = sorted(cells)
    return make_lists(audiences_table(cells), config(s, holdout_salt="salt"), policy(),
                      History.from_rows(consent=consent_all(ids)), D)


@pytest.mark.parametrize("seed", range(5))
def test_a_customers_treated_or_control_draw_does_not_depend_on_which_cell_selected_them(seed):
    """Property: relabel every customer's cell at random; the groups stay exactly the same, and they are the
    strategy's one holdout draw (sha256 of customer|strategy|salt < holdout), whatever the cell."""
    rng = random.Random(seed)
    ids = [f"C{rng.randrange(10**9):09d}" for _ in range(400)]
    first = {c: rng.choice(["model", "rule"]) for c in ids}
    second = {c: rng.choice(["model", "rule"]) for c in ids}
    a, b = plan(first), plan(second)
    assert a["customer_id"].to_pylist() == b["customer_id"].to_pylist() == sorted(ids)
    assert a["group"].to_pylist() == b["group"].to_pylist()
    expected = ["control" if d < 0.3 else "treated" for d in draws(sorted(ids), "churn_warning", "salt")]
    assert a["group"].to_pylist() == expected
    # control rows are tagged with the cell their selection picked, treated rows too
    assert a["cell"].to_pylist() == [first[c] for c in sorted(ids)]
    assert b["cell"].to_pylist() == [second[c] for c in sorted(ids)]
    groups = a["group"].to_pylist()
    for cell in ("model", "rule"):
        mine = [g for g, c in zip(groups, a["cell"].to_pylist(), strict=True) if c == cell]
        assert 0.15 < mine.count("control") / len(mine) < 0.45   # each cell has its own share of the one holdout


def test_selection_cells_are_not_drawn_by_share():
    assert assign_cells(["A", "B"], "churn_warning", "salt", [("model", None), ("rule", None)]) == [None, None]


# ------------------------------------------------------------------------------------------ the review
def cell_rows(arm, cell, n, retained, start):
    out = rows("churn", arm, n, start=start, retained=[i < retained for i in range(n)], product=False)
    for r in out:
        r["cell"] = cell
    return out


def review(parts, interim=False):
    s = review_strategy("churn", metric="retention_rate", product=None, holdout=0.3, cells=SELECT)
    return review_table(table(*parts), review_config(s), AS_OF, interim=interim)


def test_each_selection_is_compared_with_its_own_control_and_the_difference_has_the_independent_samples_ci():
    parts = [cell_rows("treated", "model", 1000, 750, 0), cell_rows("control", "model", 400, 220, 1000),
             cell_rows("treated", "rule", 1500, 1200, 2000), cell_rows("control", "rule", 600, 450, 4000)]
    doc = review(parts)
    sel = doc["strategies"][0]["selections"]
    assert sel["outcome"] == "retained" and [c["cell"] for c in sel["cells"]] == ["model", "rule"]
    by = {c["cell"]: c for c in sel["cells"]}
    # by hand: model 750/1000 - 220/400 = 0.75 - 0.55 = 0.20; rule 1200/1500 - 450/600 = 0.80 - 0.75 = 0.05
    assert by["model"]["uplift"] == pytest.approx(0.20, abs=1e-12)
    assert by["rule"]["uplift"] == pytest.approx(0.05, abs=1e-12)
    ses = {}
    for cell, (t, nt, c, nc) in {"model": (750, 1000, 220, 400), "rule": (1200, 1500, 450, 600)}.items():
        yt = np.array([1.0] * t + [0.0] * (nt - t))
        yc = np.array([1.0] * c + [0.0] * (nc - c))
        cm = CompareMeans(DescrStatsW(yt), DescrStatsW(yc))
        low, high = cm.zconfint_diff(alpha=0.05, usevar="unequal")
        assert (by[cell]["ci_low"], by[cell]["ci_high"]) == pytest.approx((low, high), abs=1e-12)
        ses[cell] = cm.std_meandiff_separatevar
        assert by[cell]["se"] == pytest.approx(ses[cell], abs=1e-12)
        assert (by[cell]["treated"], by[cell]["control"]) == (nt, nc)
    [d] = sel["differences"]
    se = (ses["model"] ** 2 + ses["rule"] ** 2) ** 0.5
    assert d["cell"] == "model" and d["against"] == "rule"
    assert d["difference"] == pytest.approx(0.15, abs=1e-12) and d["se"] == pytest.approx(se, abs=1e-12)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((0.15 - 1.959963984540054 * se, 0.15 + 1.959963984540054 * se),
                                                        abs=1e-9)
    assert d["ci_low"] > 0 and d["verdict"] == "differs" and d["better"] == "model"


def test_the_verdict_waits_while_an_arm_is_small_and_says_no_difference_when_the_ci_spans_zero():
    small = [cell_rows("treated", "model", 200, 150, 0), cell_rows("control", "model", 10, 5, 200),
             cell_rows("treated", "rule", 300, 240, 400), cell_rows("control", "rule", 120, 90, 800)]
    [d] = review(small)["strategies"][0]["selections"]["differences"]
    assert d["verdict"] == "too_early" and d["difference"] is not None and d["better"] is None
    same = [cell_rows("treated", "model", 200, 160, 0), cell_rows("control", "model", 80, 58, 200),
            cell_rows("treated", "rule", 300, 240, 400), cell_rows("control", "rule", 120, 88, 800)]
    [d] = review(same)["strategies"][0]["selections"]["differences"]
    assert d["ci_low"] < 0 < d["ci_high"] and d["verdict"] == "no_difference_yet"


def test_open_windows_are_left_out_unless_interim():
    parts = [cell_rows("treated", "model", 50, 30, 0), cell_rows("control", "model", 40, 20, 50)]
    for r in parts[0] + parts[1]:
        r["complete"] = False
    closed = review(parts)["strategies"][0]["selections"]
    assert closed["cells"][0]["treated"] == 0 and closed["differences"][0]["verdict"] == "too_early"
    interim = review(parts, interim=True)["strategies"][0]["selections"]
    assert interim["cells"][0]["uplift"] == pytest.approx(30 / 50 - 20 / 40)


def test_uplift_helpers_match_a_hand_computation():
    t, c = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 2.0])
    u = uplift_interval(t, c)
    assert u["uplift"] == pytest.approx(1.5) and u["se"] == pytest.approx((1.6666666666666667 / 4 + 1.0 / 3) ** 0.5)
    d = uplift_difference({"uplift": 0.3, "se": 0.3}, {"uplift": 0.1, "se": 0.4})
    assert d["difference"] == pytest.approx(0.2) and d["se"] == pytest.approx(0.5)
    assert d["p_value"] == pytest.approx(0.6891565167793516, abs=1e-9)   # 2 * (1 - Phi(0.4))
    assert uplift_difference({"uplift": None}, {"uplift": 0.1, "se": 0.1})["difference"] is None
