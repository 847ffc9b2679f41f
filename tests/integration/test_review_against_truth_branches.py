"""Each of the review-vs-truth branches on its own (the branches of test_review_against_truth.py).

Its own file so that xdist's ``--dist loadfile`` can give it to the other worker: tests/conftest.py schedules
both truth files first, and ``review_truth.truth_branches`` lets the two workers split the 20 branches
(each computes those no one has taken, then waits for the rest), so the ~15 minutes of one core they cost
are spread over both cores instead of one worker running them all while the other waits at the end.

Checked per branch: every evaluated strategy has both arms; its interval holds its own estimate; and the
strategy with the most customers (dormant reactivation, hundreds of entries a branch) kept the planned 50%
control share within 5 standard errors of a fair coin (sqrt(0.25 / n) each) — the 50% the test asked for
reached the lists, in every branch, not only on average.
"""

from __future__ import annotations

import math

import pytest
from review_truth import TRUTH_HOLDOUT, TRUTH_SEEDS, truth_branches

pytestmark = [pytest.mark.slow, pytest.mark.validate]   # `make validate`: the truth test's other 10 branches


def test_every_branch_reviews_both_arms_and_keeps_the_planned_control_share(tmp_path_factory):
    branches = truth_branches(tmp_path_factory)
    assert len(branches) == len(TRUTH_SEEDS)
    for seed, found in zip(TRUTH_SEEDS, branches, strict=True):
        assert "dormant_reactivation" in found, (seed, sorted(found))
        for strategy, r in found.items():
            assert r["treated"] > 0 and r["control"] > 0, (seed, strategy, r)
            assert r["ci_low"] - 1e-12 <= r["uplift"] <= r["ci_high"] + 1e-12, (seed, strategy, r)
        big = found["dormant_reactivation"]
        n = big["treated"] + big["control"]
        assert n >= 100, (seed, big)
        assert abs(big["control"] / n - TRUTH_HOLDOUT) <= 5 * math.sqrt(0.25 / n), (seed, big)
