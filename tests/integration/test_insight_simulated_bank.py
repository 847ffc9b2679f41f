"""On the simulated bank, assigned lifecycle stages agree with the simulator's hidden states (a floor).

The simulator writes its hidden lifecycle state per customer to ``_truth/customers.parquet``; the
agreement measured when this test was written is recorded in docs/insight.md. The floor sits below
it so that a change to the default stage rules, the features or the simulator that makes stages
markedly worse fails here instead of going unnoticed.
"""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest

from lifeloop.context import Context

pytestmark = pytest.mark.slow

FLOOR = 0.60
@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    base = tmp_path_factory.mktemp("simbank")
    ctx = Context.init(base / "ws")
    ctx.simulate(base / "extracts", customers=2000, days=400, seed=7)
    report = ctx.ingest(base / "extracts")
    ctx.run(report.as_of, ["features", "lifecycle", "segments"])
    yield ctx, report.as_of, base / "extracts" / "_truth"
    ctx.close()


def test_stages_agree_with_the_simulators_hidden_states_on_a_clear_majority(simulated):
    ctx, as_of, truth_dir = simulated
    truth = {r["customer_id"]: r["stage"] for r in pq.read_table(truth_dir / "customers.parquet").to_pylist()}
    assigned = ctx.snapshot("lifecycle", as_of).to_pylist()
    pairs = Counter((truth.get(r["customer_id"]), r["stage"]) for r in assigned)
    agree = sum(n for (t, s), n in pairs.items() if t == s) / len(assigned)
    assert agree >= FLOOR, f"agreement {agree:.1%} < floor {FLOOR:.0%}; confusion: {dict(pairs)}"
    # the stages that are facts of the account, not judgement, agree almost exactly
    for stage in ("prospect", "churned", "honeymoon"):
        total = sum(n for (t, _), n in pairs.items() if t == stage)
        assert total == 0 or pairs[(stage, stage)] / total >= 0.9, (stage, dict(pairs))


def test_the_simulated_bank_has_customers_in_every_value_tier_but_private_is_rare(simulated):
    ctx, as_of, _ = simulated
    tiers = Counter(ctx.snapshot("segments", as_of)["tier"].to_pylist())
    total = sum(tiers.values())
    assert tiers["mass"] / total > 0.5 and 0 < tiers["private"] / total < 0.02 and tiers["wealth"] > 0
