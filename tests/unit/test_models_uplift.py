"""Qini and AUUC against hand computation; trees exported to JSON score exactly as sklearn; uplift learners
recover a known effect on synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeloop.config.shelf import BoostingSpec, ModelSpec
from lifeloop.errors import DataError
from lifeloop.models import qini, uplift
from lifeloop.models.trees import Forest, export
from lifeloop.models.uplift import ResponseModel, TLearner, XLearner, classifier, regressor

# ---------------------------------------------------------------------------------------- Qini, by hand
# eight customers, sorted by score already
SCORE = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
TREATED = [1, 0, 1, 1, 0, 0, 1, 0]
Y = [1, 0, 1, 0, 1, 0, 0, 0]
# k: (N_t, Y_t, N_c, Y_c) -> Q(k) = Y_t - Y_c N_t / N_c ; U(k) = (Y_t/N_t - Y_c/N_c) k   (an empty arm's rate is 0)
# 1: (1,1,0,0) -> 1        ; 1
# 2: (1,1,1,0) -> 1        ; 2
# 3: (2,2,1,0) -> 2        ; 3
# 4: (3,2,1,0) -> 2        ; 2/3 * 4 = 8/3
# 5: (3,2,2,1) -> 2 - 3/2  ; (2/3 - 1/2) * 5 = 5/6
# 6: (3,2,3,1) -> 1        ; (2/3 - 1/3) * 6 = 2
# 7: (4,2,3,1) -> 2 - 4/3  ; (1/2 - 1/3) * 7 = 7/6
# 8: (4,2,4,1) -> 1        ; (1/2 - 1/4) * 8 = 2
HAND_Q = [0, 1, 1, 2, 2, 0.5, 1, 2 / 3, 1]
HAND_U = [0, 1, 2, 3, 8 / 3, 5 / 6, 2, 7 / 6, 2]


def test_qini_and_uplift_curves_match_the_hand_computation():
    c = qini.curves(Y, TREATED, SCORE)
    assert c.k.tolist() == list(range(9))
    assert c.qini == pytest.approx(HAND_Q)
    assert c.uplift == pytest.approx(HAND_U)


def test_qini_coefficient_and_auuc_match_the_hand_computation():
    # trapezoids over k of Q: (0+1)/2 + (1+1)/2 + (1+2)/2 + (2+2)/2 + (2+.5)/2 + (.5+1)/2 + (1+2/3)/2 + (2/3+1)/2
    #   = 26/3 conversions x customers; x = k/8 and y = Q/8 -> (26/3)/64 = 13/96; random: Q(8)/8/2 = 6/96
    assert qini.qini_coefficient(Y, TREATED, SCORE) == pytest.approx(7 / 96)
    # U: (1 + 3 + 5 + 17/3 + 7/2 + 17/6 + 19/6 + 19/6) / 2 = 41/3 -> /64 = 41/192; random: U(8)/8/2 = 24/192
    assert qini.auuc(Y, TREATED, SCORE) == pytest.approx(41 / 192)
    assert qini.auuc_vs_random(Y, TREATED, SCORE) == pytest.approx(17 / 192)
    # the top 3 by score: treated 2 of 2 converted, control 0 of 1
    assert qini.uplift_at(Y, TREATED, SCORE, 3 / 8) == pytest.approx(1.0)


def test_reversing_the_ranking_reverses_the_sign_and_tied_scores_rank_like_chance():
    assert qini.qini_coefficient(Y, TREATED, [-s for s in SCORE]) < 0
    c = qini.curves(Y, TREATED, [0.5] * 8)
    assert c.k.tolist() == [0, 8] and qini.qini_coefficient(Y, TREATED, [0.5] * 8) == pytest.approx(0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 4)), min_size=2, max_size=40),
       st.randoms(use_true_random=False))
def test_the_curves_do_not_depend_on_the_order_of_customers(rows, rnd):
    y, t, s = (np.array(c, float) for c in zip(*rows, strict=True))
    perm = np.array(rnd.sample(range(len(rows)), len(rows)))
    a, b = qini.curves(y, t, s), qini.curves(y[perm], t[perm], s[perm])
    assert np.allclose(a.qini, b.qini) and np.allclose(a.uplift, b.uplift)
    # and the end of the Qini curve is the whole base's treated conversions minus the scaled control's
    n_t, n_c = t.sum(), (1 - t).sum()
    end = (y * t).sum() - ((y * (1 - t)).sum() * n_t / n_c if n_c else 0.0)
    assert a.qini[-1] == pytest.approx(end)


def test_bad_inputs_are_refused_with_what_is_wrong():
    with pytest.raises(DataError, match="different lengths"):
        qini.curves([1, 0], [1, 0, 1], [0.1, 0.2])
    with pytest.raises(DataError, match="must be 0/1"):
        qini.curves([1, 0], [2, 0], [0.1, 0.2])
    with pytest.raises(DataError, match="1 scores are missing"):
        qini.curves([1, 0], [1, 0], [0.1, np.nan])


# ---------------------------------------------------------------------------------------- trees as JSON
def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    X[rng.random(n) < 0.15, 1] = np.nan
    return rng, X


def test_exported_trees_score_bit_for_bit_like_sklearn_and_contributions_add_up_exactly():
    rng, X = _data()
    y = (X[:, 0] + np.nan_to_num(X[:, 1]) + rng.normal(size=len(X)) > 0).astype(int)
    spec = ModelSpec(name="t", kind="response", offer="WM090", features=("a", "b", "c", "d"), boosting=ONE)
    fitted = uplift.fitted(spec, classifier(spec), X, y)
    forest = Forest(json.loads(json.dumps(export(fitted))))
    _, Xt = _data(1000, seed=5)
    Xt[::4, 2] = np.nan                            # missing where training never had one
    assert np.array_equal(forest.raw(Xt), fitted._raw_predict(Xt).ravel())
    assert np.allclose(1 / (1 + np.exp(-forest.raw(Xt))), fitted.predict_proba(Xt)[:, 1], rtol=0, atol=1e-15)
    base, contrib = forest.contributions(Xt)
    assert np.abs(base + contrib.sum(axis=1) - forest.raw(Xt)).max() < 1e-12
    # the features that drive the label carry the contributions; the noise features much less
    spread = contrib.std(axis=0)
    assert spread[0] > 3 * spread[2] and spread[1] > 3 * spread[3]
    reg = uplift.fitted(spec, regressor(spec), X, 2 * X[:, 0] + rng.normal(size=len(X)))
    assert np.array_equal(Forest(export(reg)).raw(Xt), reg.predict(Xt))
    with pytest.raises(DataError, match="3 feature columns given, the trees were fitted on 4"):
        forest.raw(Xt[:, :3])


# ---------------------------------------------------------------------------------------- learners
ONE = BoostingSpec(threads=1)   # the test machine is shared: one OpenMP thread is many times faster there
SPEC = ModelSpec(name="wealth_offer", kind="uplift", offer="WM090", features=("a", "b", "c", "d"), seed=1,
                 boosting=ONE)


def randomised(n: int, seed: int, effect: float = 1.0) -> tuple[np.ndarray, ...]:
    """Base rate from x0, a true uplift of 0.25 x effect where x1 > 0 (0 elsewhere), half treated."""
    rng, X = _data(n, seed)
    t = rng.random(n) < 0.5
    base = 0.1 + 0.1 * (X[:, 0] > 0)
    tau = effect * 0.25 * (np.nan_to_num(X[:, 1], nan=-1.0) > 0)
    y = (rng.random(n) < base + t * tau).astype(int)
    return X, y, t, tau


@pytest.mark.parametrize("learner", [TLearner, XLearner])
def test_meta_learners_find_whom_the_contact_moves_and_round_trip_through_json(learner):
    X, y, t, _ = randomised(6000, seed=2)
    model = learner(SPEC).fit(X, y, t)
    Xt, yt, tt, tau = randomised(4000, seed=3)
    pred = model.predict(Xt)
    assert pred[tau > 0].mean() - pred[tau == 0].mean() > 0.15       # the true gap is 0.25
    assert abs(pred[tau == 0].mean()) < 0.05
    # ranked by predicted uplift, the top 30% hold clearly more of the true effect than 30% at random
    top = np.argsort(-pred)[: int(0.3 * len(pred))]
    assert tau[top].sum() > 1.6 * 0.3 * tau.sum()
    assert qini.qini_coefficient(yt, tt, pred) > 0.01
    again = learner.from_json(SPEC, json.loads(json.dumps(model.to_json())))
    assert np.array_equal(again.predict(Xt), pred)


def test_an_offer_without_effect_has_a_qini_within_noise_of_zero():
    X, y, t, _ = randomised(6000, seed=4, effect=0.0)
    model = TLearner(SPEC).fit(X, y, t)
    Xt, yt, tt, _ = randomised(6000, seed=5, effect=0.0)
    found = qini.evaluate(yt, tt, model.predict(Xt), reps=100)
    lo, hi = found["qini"]["ci95"]
    assert lo < 0 < hi


def test_the_response_model_learns_from_the_treated_only_and_uplift_needs_both_arms():
    X, y, t, _ = randomised(4000, seed=6)
    response = ResponseModel(ModelSpec(name="r", kind="response", offer="WM090", features=("a", "b", "c", "d"),
                                       boosting=ONE))
    p = response.fit(X, y, t).predict(X)
    assert p.min() >= 0 and p.max() <= 1
    assert p[(X[:, 0] > 0) & (X[:, 1] > 0)].mean() > p[(X[:, 0] < 0) & (X[:, 1] < 0)].mean() + 0.2
    with pytest.raises(DataError, match="all treated.*needs both") as e:
        TLearner(SPEC).fit(X, y, np.ones(len(y), bool))
    assert "holdout" in e.value.hint
    with pytest.raises(DataError, match="every control entry has the same outcome"):
        TLearner(SPEC).fit(X, np.where(t, y, 0), t)


def test_a_spec_gets_its_kinds_estimator_and_refuses_one_that_does_not_fit():
    assert ModelSpec(name="u", kind="uplift", offer="WM090").estimator == "t_learner"
    assert ModelSpec(name="r", kind="response", offer="WM090").estimator == "hgb"
    with pytest.raises(ValueError, match="cannot use estimator 'scorecard'; use one of: t_learner, x_learner"):
        ModelSpec(name="u", kind="uplift", offer="WM090", estimator="scorecard")
    with pytest.raises(ValueError, match="needs the offer"):
        ModelSpec(name="u", kind="uplift")
