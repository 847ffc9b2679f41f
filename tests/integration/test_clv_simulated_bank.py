"""CLV on the shelf (kind: clv) on a small simulated bank: fitted as of D - H on its transactions (nothing later
read), scored as of D by the daily scores step, and selecting customers in audience rules and rankings."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import textwrap
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lifeloop.context import Context
from lifeloop.models import registry, training
from lifeloop.models.clv import customer_lifetime_value, rfm_summary
from lifeloop.models.clv.value import per_period_rate
from tests.integration.test_models_simulated_bank import bank  # noqa: F401 - its small simulated bank

H = 90
MODELS = textwrap.dedent(f"""\
    version: 1
    models:
      - {{name: churn, description: churn warning}}
      - {{name: clv, kind: clv, clv: {{horizon_days: {H}, discount_rate: 0.1, margin: 0.004}}}}
""")


def workspace(bank, tmp_path):  # noqa: F811
    shutil.copytree(bank[0].workspace, tmp_path / "ws")
    ctx = Context(tmp_path / "ws")
    (ctx.config_dir / "models.yaml").write_text(MODELS, encoding="utf-8")
    return ctx, bank[1]


def debits(ctx, day):
    """The counted transactions by hand: customer-initiated debits with a positive amount, dated by ``day``."""
    t = pa.concat_tables([ctx.lake.read_table(f) for f in ctx.lake.bank_files(day)["transactions"]])
    keep = pc.and_(pc.and_(pc.equal(t["direction"], "debit"), t["customer_initiated"]),
                   pc.and_(pc.less_equal(t["txn_date"], pa.scalar(day, pa.date32())),
                           pc.greater(pc.cast(t["amount"], pa.float64()), 0.0)))
    return t.filter(keep)


@pytest.mark.slow   # the simulated bank's backfill takes a minute or more
def test_changing_every_transaction_dated_after_d_minus_h_gives_the_identical_clv_model(bank, tmp_path):  # noqa: F811
    ctx, last = workspace(bank, tmp_path)
    spec = ctx.models_config().spec("clv")
    first, fields = training.fit(ctx.lake, spec, last)
    cut = last - dt.timedelta(days=H)
    assert fields["training_window"]["calibration_end"] == cut.isoformat()
    v = fields["validation"]   # the holdout (C, D]: 6,397 predicted repeat transactions, 6,660 observed
    assert abs(v["predicted_transactions"] / v["observed_transactions"] - 1) < 0.1 and v["correlation"] > 0.8
    assert first.bg.n_customers == rfm_summary(debits(ctx, cut), "customer_id", "txn_date", "amount",
                                               observation_end=cut).num_rows
    changed = 0
    for day in ctx.lake.dates("bank"):
        folder = ctx.lake.snapshot_dir("bank", day)
        tables = {f.stem: ctx.lake.read_table(f) for f in folder.glob("*.parquet")}
        t = tables.get("transactions")
        if t is None:
            continue
        later = pc.greater(t["txn_date"], pa.scalar(cut, pa.date32()))
        changed += pc.sum(later).as_py() or 0
        seven = pc.cast(pc.multiply(t["amount"], pa.scalar(Decimal(7), pa.decimal128(1, 0))), t["amount"].type)
        t = t.set_column(t.schema.get_field_index("amount"), "amount", pc.if_else(later, seven, t["amount"]))
        t = t.set_column(t.schema.get_field_index("direction"), "direction",
                         pc.if_else(later, pa.scalar("debit"), t["direction"]))
        t = t.set_column(t.schema.get_field_index("customer_initiated"), "customer_initiated",
                         pc.if_else(later, pa.scalar(True), t["customer_initiated"]))
        tables["transactions"] = t

        def write(staging, tables=tables):
            for name, table in tables.items():
                pq.write_table(table, staging / f"{name}.parquet")
        ctx.lake.publish("bank", day, write)
    assert changed > 1000
    again, fields_again = training.fit(ctx.lake, spec, last)
    assert json.dumps(again.to_json(), sort_keys=True) == json.dumps(first.to_json(), sort_keys=True)
    # the holdout (C, D] reads the changed rows: the validation sees them (the test would prove nothing otherwise)
    assert fields_again["validation"]["observed_transactions"] > fields["validation"]["observed_transactions"]
    ctx.close()


@pytest.mark.slow
def test_the_daily_run_scores_clv_as_of_d_and_selects_by_it_in_a_rule_and_a_ranking(bank, tmp_path):  # noqa: F811
    ctx, last = workspace(bank, tmp_path)
    manifest = ctx.fit_model("clv", last)
    assert manifest["kind"] == "clv" and manifest["estimator"] == "bg_nbd_gamma_gamma"
    assert manifest["validation"]["customers"] > 100
    ctx.promote_model("clv", manifest["version"], reason="test: holdout checked")
    ctx.run(last, ["scores"])
    scores = ctx.snapshot("scores", last)
    detail = pq.read_table(ctx.lake.snapshot_dir("scores", last) / "clv.parquet")

    # by hand: the RFM summary of every counted debit by D, and the library's CLV over H days at 10% a year
    rfm = rfm_summary(debits(ctx, last), "customer_id", "txn_date", "amount", observation_end=last, period="W")
    model, _ = registry.load(ctx.lake, "clv", manifest["version"])
    cols = [rfm[c].to_numpy().astype(float) for c in ("frequency", "recency", "T", "monetary_value")]
    expected = customer_lifetime_value(model.bg, model.gg, *cols, horizon=H / 7,
                                       discount_rate=per_period_rate(0.1, "weeks"), margin=0.004)
    assert scores["customer_id"].to_pylist() == rfm["customer_id"].to_pylist() == detail["customer_id"].to_pylist()
    assert np.isfinite(expected).all() and np.allclose(scores["score"].to_numpy(), expected, rtol=1e-12, atol=0)
    assert scores["score"].to_pylist() == detail["clv"].to_pylist()
    assert np.allclose(detail["expected_transactions"].to_numpy(),
                       model.bg.expected_transactions(H / 7, cols[0], cols[1], cols[2]), rtol=1e-12)
    assert np.allclose(detail["expected_spend"].to_numpy(), model.gg.expected_spend(cols[0], cols[3]), rtol=1e-12)
    p = detail["p_alive"].to_numpy()
    assert ((p > 0) & (p <= 1)).all() and (p[cols[0] == 0] == 1).all()
    assert sorted(set(scores["decile"].to_pylist())) == list(range(1, 11))
    assert scores["reason_1"].null_count == scores.num_rows
    assert ctx.lake.manifest("scores", last)["models"]["clv"]["version"] == manifest["version"]

    # a threshold rule and a ranking by score('clv') in the strategy map, then the day's run
    cut = float(np.quantile(expected, 0.8))
    path = ctx.config_dir / "strategies.yaml"
    text = path.read_text(encoding="utf-8")
    rule = "audience: \"stage = 'dormant' AND coalesce(aum, 0) >= dormant_min_aum\""
    ranked = "audience: \"stage = 'declining' AND tier IN ('wealth', 'private')\""
    assert text.count(rule) == 1 and text.count(ranked) == 1
    text = text.replace(rule, f"audience: \"score('clv') >= {cut!r}\"\n    fallback_audience: \"stage = 'dormant'\"")
    text = text.replace(ranked, "audience: \"true\"\n    top: {share: 0.05, by: \"score('clv')\"}\n"
                                "    fallback_audience: \"stage = 'declining'\"")
    path.write_text(text, encoding="utf-8")
    ctx.run(last)
    audiences = ctx.snapshot("audiences", last)

    def chosen(strategy):
        return sorted(audiences.filter(pc.equal(audiences["strategy"], strategy))["customer_id"].to_pylist())

    in_features = set(ctx.features(last)["customer_id"].to_pylist())
    scored = scores.filter(pc.is_in(scores["customer_id"], value_set=pa.array(sorted(in_features))))
    passing = scored.filter(pc.greater_equal(scored["score"], cut))["customer_id"].to_pylist()
    assert chosen("dormant_reactivation") == sorted(passing) and len(passing) > 10
    order = sorted(zip(scored["score"].to_pylist(), scored["customer_id"].to_pylist(), strict=True),
                   key=lambda r: (-r[0], r[1]))
    top = sorted(c for _, c in order[:int(np.ceil(0.05 * scored.num_rows))])
    assert chosen("wealth_churn_retention") == top
    assert ctx.lake.manifest("audiences", last)["models_read"]["dormant_reactivation"] == ["clv"]

    # value tiers by CLV (客户终身价值分层): tier_measure score('clv'), tiers cut at the CLV's quartiles
    q1, q2, q3 = (round(float(np.quantile(expected, q)), 2) for q in (0.25, 0.5, 0.75))
    path = ctx.config_dir / "segments.yaml"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  - {name: mass,"))
    lines[first:first + 4] = [f"  - {{name: mass, min: 0, max: {q1}}}",
                              f"  - {{name: potential, min: {q1}, max: {q2}}}",
                              f"  - {{name: wealth, min: {q2}, max: {q3}}}", f"  - {{name: private, min: {q3}}}"]
    text = "\n".join(lines).replace("tier_measure: aum", "tier_measure: \"score('clv')\"")
    path.write_text(text + "\n", encoding="utf-8")
    ctx.close()
    ctx = Context(tmp_path / "ws")    # a context reads each config file once
    ctx.run(last, ["segments"])
    got = ctx.snapshot("segments", last)
    clv = dict(zip(scores["customer_id"].to_pylist(), scores["score"].to_pylist(), strict=True))

    def tier(v):
        v = round(v, 2)   # the measure is kept as DECIMAL(18,2) and compared unrounded: only cents at a cut differ
        return "mass" if v < q1 else "potential" if v < q2 else "wealth" if v < q3 else "private"

    want = {c: tier(clv.get(c, 0.0)) for c in got["customer_id"].to_pylist()}
    have = dict(zip(got["customer_id"].to_pylist(), got["tier"].to_pylist(), strict=True))
    near_a_cut = {c for c in want if min(abs(clv.get(c, 0.0) - q) for q in (q1, q2, q3)) < 0.01}
    assert {c: t for c, t in have.items() if c not in near_a_cut} == {c: t for c, t in want.items()
                                                                     if c not in near_a_cut}
    assert len(set(have.values())) == 4 and len(near_a_cut) < 5
    measure = dict(zip(got["customer_id"].to_pylist(), got["aum"].to_pylist(), strict=True))   # the tier measure
    assert all(abs(float(m) - clv.get(c, 0.0)) <= 0.005 for c, m in measure.items())
    ctx.close()
