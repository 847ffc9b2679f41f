"""Suitability through the audiences and plan steps on a tiny lake (the same lake as test_plan.py).

As of D = 2024-06-30, strategy ``equity`` offers FD_EQ (an R4 equity fund) to every honeymoon
customer (C1-C4); ``birthday`` sends C5 a care message (a code, not a product).

  customer  assessment                  age   expected
  C1        C3 valid until 2025-01-01   39    dropped: C3 does not cover R4
  C2        C5 expired on 2024-06-01    38    dropped, re-assessment task (expired)
  C3        none                        37    dropped, re-assessment task (missing)
  C4        C5 valid until 2025-03-01   70    contacted, flagged for the enhanced sales process (65+ and R4)
  C5        none                        34    birthday care message: not subject to suitability
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from tests.factories import new_context
from tests.fixtures_bank import publish_batch
from tests.integration.test_plan import publish_insight

D = dt.date(2024, 6, 30)
d = dt.date.fromisoformat

STRATEGIES = """\
version: 1
holdout_salt: test
strategies:
  - id: equity
    name: {zh: 权益基金, en: Equity fund}
    owner: wealth
    objective: {kind: fee_income, metric: fee, window_days: 90}
    scenario: {kind: product, stages: [honeymoon]}
    audience: "stage = 'honeymoon'"
    offer: {product_id: FD_EQ}
    channels: [sms]
    scripts: {sms: {zh: "【示例银行】基金推荐，回复TD退订", en: "【Demo Bank】A fund for you. Reply STOP to opt out"}}
    waves: [{id: w1, day: 0}]
    holdout: 0
    priority: 90
    start: 2024-01-01
  - id: birthday
    name: {zh: 生日关怀, en: Birthday}
    owner: cx
    objective: {kind: customers, metric: retention, window_days: 90}
    scenario: {kind: calendar}
    audience: "birthday_today"
    purpose: service
    offer: {code: CARE}
    channels: [sms]
    scripts: {sms: {zh: "生日快乐", en: "Happy birthday"}}
    waves: [{id: greet, day: 0, send_at: "09:00"}]
    holdout: 0
    start: 2024-01-01
"""


def person(cid, birth, level, assessed, expires):
    return (cid, "N", "F", d(birth), None, None, None, "SH", None, "B1", "RM1", d("2024-06-01"), False, level,
            assessed and d(assessed), expires and d(expires))


CUSTOMERS = [
    person("C1", "1985-03-01", "C3", "2024-01-01", "2025-01-01"),
    person("C2", "1986-04-02", "C5", "2023-06-01", "2024-06-01"),
    person("C3", "1987-05-03", None, None, None),
    person("C4", "1954-01-04", "C5", "2024-03-01", "2025-03-01"),
    person("C5", "1990-06-30", None, None, None),
    person("C6", "1960-02-05", None, None, None),
]


@pytest.fixture()
def ctx(tmp_path):
    ctx = new_context(tmp_path)
    (ctx.config_dir / "strategies.yaml").write_text(STRATEGIES, encoding="utf-8")
    (ctx.config_dir / "contact_policy.yaml").write_text("channels: {sms: {cost: 0.05}}\n", encoding="utf-8")
    publish_batch(ctx.lake, D, {
        "branches": [("B1", "Main street", "Shanghai", "East")], "relationship_managers": [("RM1", "Li Lei", "B1", 5)],
        "customers": CUSTOMERS,
        "products": [("FD_EQ", "Equity fund", "fund", None, Decimal("0.015000"), "R4", "CNY")],
        "consent": [(c, "marketing", "sms", True, None) for c in ("C1", "C2", "C3", "C4")]})
    publish_insight(ctx.lake, D)
    yield ctx
    ctx.close()


def test_the_plan_step_drops_unsuitable_offers_flags_the_elderly_and_writes_re_assessment_tasks(ctx):
    result = ctx.run(D, ["audiences", "plan"])[-1]
    folder = ctx.lake.snapshot_dir("lists", D)
    lists = pq.read_table(folder / "lists.parquet").to_pylist()
    assert [(r["strategy"], r["customer_id"], r["status"], r["dropped_by"], r["suitability"]) for r in lists] == [
        ("birthday", "C5", "contact", None, None),
        ("equity", "C1", "dropped", "suitability", "unsuitable"),
        ("equity", "C2", "dropped", "suitability", "reassess"),
        ("equity", "C3", "dropped", "suitability", "reassess"),
        ("equity", "C4", "contact", None, "enhanced_sales"),
    ]
    by = {r["customer_id"]: r for r in lists}
    assert by["C1"]["detail"] == "suitability: unsuitable (C3 valid until 2025-01-01; product FD_EQ is R4)"
    assert by["C2"]["detail"] == "suitability: reassess (assessment C5 expired 2024-06-01; product FD_EQ is R4)"
    tasks = pq.read_table(folder / "reassessments.parquet").to_pylist()
    assert [(t["customer_id"], t["rm_id"], t["risk_level"], t["expired_on"], t["status"], t["blocked_offers"])
            for t in tasks] == [("C2", "RM1", "C5", d("2024-06-01"), "expired", "FD_EQ"),
                                ("C3", "RM1", None, None, "missing", "FD_EQ")]
    assert result.summary["dropped_by"] == {"suitability": 3} and result.summary["reassessments"] == 2
    manifest = json.loads((folder / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["summary"]["reassessments"] == 2
