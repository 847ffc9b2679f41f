"""Audiences and plan on a tiny lake, checked by hand over two days (a journey's second wave).

As of D = 2024-06-30 (holdout salt "test"; draws computed once with sha256 and listed here):

  customer  stage      segments        today's events           consent (marketing)   draw in welcome
  C1        honeymoon  mass            -                        sms, rm               0.805
  C2        honeymoon  mass            -                        none                  0.904
  C3        honeymoon  mass, payroll   salary credited          sms, push, rm         0.126 (< 0.2: control)
  C4        honeymoon  wealth          60,000 transferred out   sms, rm               0.386
  C5        growing    mass            birthday                 none (service ok)     -
  C6        dormant    mass            -                        sms                   -
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import lake_fingerprint, new_context
from tests.fixtures_bank import publish_batch

D = dt.date(2024, 6, 30)
D2 = D + dt.timedelta(days=7)
d = dt.date.fromisoformat

STRATEGIES = """\
version: 1
holdout_salt: test
events: {large_outflow: 50000}
strategies:
  - id: welcome
    name: {zh: 欢迎, en: Welcome}
    owner: hq
    objective: {kind: customers, metric: activation_rate, window_days: 90}
    scenario: {kind: lifecycle, stages: [honeymoon]}
    audience: "stage = 'honeymoon' AND digital_share_90d >= 0.25"
    offer: {product_id: WM090}
    channels: [sms, rm]
    scripts:
      sms: {zh: "【示例银行】{{ customer_name }}您好，回复TD退订", en: "【Demo Bank】Hello {{ customer_name }}. Reply STOP to opt out"}
      rm: {zh: "我是{{ rm_name }}", en: "I am {{ rm_name }}"}
    waves:
      - {id: w1, day: 1, channel: sms}
      - {id: w2, day: 8, channel: rm, depends_on: {wave: w1, outcome: no_response}}
    holdout: 0.2
    priority: 50
    start: 2024-01-01
  - id: salary_day
    name: {zh: 代发日, en: Salary day}
    owner: payroll
    objective: {kind: fee_income, metric: fee, window_days: 30}
    scenario: {kind: event}
    audience: "salary_today AND seg_payroll"
    offer: {code: WEALTH_30}
    channels: [push]
    scripts: {push: {zh: "工资到账", en: "Payday"}}
    waves: [{id: pay, day: 0, send_at: "18:30"}]
    holdout: 0.15
    priority: 60
    start: 2024-01-01
  - id: outflow
    name: {zh: 大额转出, en: Large outflow}
    owner: wealth
    objective: {kind: scale, metric: aum_retained, window_days: 60}
    scenario: {kind: event, segments: [wealth]}
    audience: "large_outflow_today AND tier = 'wealth'"
    offer: {product_id: TD1Y}
    channels: [rm]
    scripts: {rm: {zh: "我是{{ rm_name }}", en: "I am {{ rm_name }}"}}
    waves: [{id: call, day: 0}]
    holdout: 0.1
    priority: 90
    expected: {uplift: 0.05, value: 2000}     # 0.05 x 2000 - 20 = 80 RMB a visit: first by value too
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
    scripts: {sms: {zh: "生日快乐 {{ customer_name }}", en: "Happy birthday {{ customer_name }}"}}
    waves: [{id: greet, day: 0, send_at: "09:00"}]
    holdout: 0.1
    priority: 30
    start: 2024-01-01
"""  # noqa: E501
POLICY = """\
caps: {day: 1}
quiet_hours: {sms: {start: "21:00", end: "08:00"}}
channels:
  sms: {cost: 0.05}
  push: {cost: 0}
  rm: {cost: 20, per_rm_per_day: 5}
"""

CUSTOMERS = [  # id, name, gender, birth, id_no, mobile, email, city, occupation, branch, rm, open, prospect,
    # risk level, assessed, expires (C1-C4 hold a valid C2 assessment, so welcome's R2 product is suitable for them)
    ("C1", "王小明", "M", d("1985-03-01"), None, None, None, "SH", None, "B1", "RM1", d("2024-06-01"), False, "C2",
     d("2024-01-01"), d("2025-01-01")),
    ("C2", "李四", "F", d("1986-04-02"), None, None, None, "SH", None, "B1", "RM1", d("2024-06-01"), False, "C2",
     d("2024-01-01"), d("2025-01-01")),
    ("C3", "张三", "M", d("1987-05-03"), None, None, None, "SH", None, "B1", "RM1", d("2024-06-01"), False, "C2",
     d("2024-01-01"), d("2025-01-01")),
    ("C4", "赵六", "F", d("1970-01-04"), None, None, None, "SH", None, "B1", "RM1", d("2024-06-01"), False, "C2",
     d("2024-01-01"), d("2025-01-01")),
    ("C5", "孙七", "F", d("1990-06-30"), None, None, None, "SH", None, "B1", None, d("2020-01-01"), False, None, None,
     None),
    ("C6", "周八", "M", d("1960-02-05"), None, None, None, "SH", None, "B1", None, d("2015-01-01"), False, None, None,
     None),
]
TRANSACTIONS = [
    ("T1", "A3", "C3", D, Decimal("9000.00"), "credit", "salary", "system", "employer", False, None),
    ("T2", "A4", "C4", D, Decimal("60000.00"), "debit", "transfer", "mobile", "individual", True, None),
    ("T3", "A1", "C1", D - dt.timedelta(days=1), Decimal("70000.00"), "debit", "transfer", "mobile", "individual", True,
     None),
]
CONSENT = [(c, "marketing", ch, True, None) for c, chans in
           (("C1", ("sms", "rm")), ("C3", ("sms", "push", "rm")), ("C4", ("sms", "rm")), ("C6", ("sms",)))
           for ch in chans]
STAGES = {"C1": "honeymoon", "C2": "honeymoon", "C3": "honeymoon", "C4": "honeymoon", "C5": "growing", "C6": "dormant"}
TIERS = {"C4": "wealth"}


def publish_insight(lake, as_of):
    ids = sorted(STAGES)
    features = pa.table({"customer_id": ids, "aum": pa.array([Decimal("600000.00") if c == "C4" else Decimal("1000.00")
                                                            for c in ids], pa.decimal128(18, 2)),
                         "tenure_days": pa.array([30] * len(ids), pa.int32()),
                         "digital_share_90d": pa.array([1 / 3 if c == "C1" else 0.25 for c in ids], pa.float64())})
    lifecycle = pa.table({"customer_id": ids, "stage": [STAGES[c] for c in ids], "rule": ["r"] * len(ids),
                          "previous_stage": pa.nulls(len(ids), pa.string()),
                          "days_in_stage": pa.array([1] * len(ids), pa.int32()),
                          "as_of": pa.array([as_of] * len(ids), pa.date32())})
    segments = pa.table({"customer_id": ids, "tier": [TIERS.get(c, "mass") for c in ids],
                         "aum": features["aum"], "seg_payroll": [c == "C3" for c in ids],
                         "micro_segment": pa.nulls(len(ids), pa.string())})
    for area, table in (("features", features), ("lifecycle", lifecycle), ("segments", segments)):
        lake.publish(area, as_of, lambda st, t=table, a=area: pq.write_table(t, st / f"{a}.parquet"), manifest={})


@pytest.fixture()
def ctx(tmp_path):
    ctx = new_context(tmp_path)
    (ctx.config_dir / "strategies.yaml").write_text(STRATEGIES, encoding="utf-8")
    (ctx.config_dir / "contact_policy.yaml").write_text(POLICY, encoding="utf-8")
    publish_batch(ctx.lake, D, {
        "branches": [("B1", "Main street", "Shanghai", "East")], "relationship_managers": [("RM1", "Li Lei", "B1", 1)],
        "customers": CUSTOMERS,
        "products": [("WM090", "90-day wealth", "wealth", 90, Decimal("0.005000"), "R2", "CNY"),
                     ("TD1Y", "1-year deposit", "time_deposit", 365, Decimal("0.001000"), "R1", "CNY")],
        "transactions": TRANSACTIONS, "consent": CONSENT})
    publish_insight(ctx.lake, D)
    yield ctx
    ctx.close()


def run_day(ctx, as_of):
    ctx.run(as_of, ["audiences", "plan"])
    return (pq.read_table(ctx.lake.snapshot_dir("audiences", as_of) / "audiences.parquet").to_pylist(),
            pq.read_table(ctx.lake.snapshot_dir("lists", as_of) / "lists.parquet").to_pylist())


def pick(rows, *keys):
    return [tuple(r[k] for k in keys) for r in rows]


def test_audiences_hold_each_eligible_customer_with_the_values_that_made_the_rule_true(ctx):
    aud, _ = run_day(ctx, D)
    assert pick(aud, "strategy", "wave", "customer_id", "rm_id", "reason") == [
        ("birthday", "greet", "C5", None, "birthday_today=true"),
        ("outflow", "call", "C4", "RM1", "large_outflow_today=true, tier=wealth"),   # C1's outflow was yesterday
        ("salary_day", "pay", "C3", "RM1", "salary_today=true, seg_payroll=true"),
        ("welcome", "w1", "C1", "RM1", "digital_share_90d=0.3333, stage=honeymoon"),   # a DOUBLE, shown rounded
        ("welcome", "w1", "C2", "RM1", "digital_share_90d=0.2500, stage=honeymoon"),
        ("welcome", "w1", "C3", "RM1", "digital_share_90d=0.2500, stage=honeymoon"),
        ("welcome", "w1", "C4", "RM1", "digital_share_90d=0.2500, stage=honeymoon"),
    ]


def test_the_plan_lists_treated_control_and_dropped_customers_with_the_policy_that_dropped_them(ctx):
    _, lists = run_day(ctx, D)
    assert pick(lists, "strategy", "wave", "customer_id", "group", "status", "channel", "send_at", "dropped_by") == [
        ("birthday", "greet", "C5", "treated", "contact", "sms", "09:00", None),        # service: no consent row needed
        ("outflow", "call", "C4", "treated", "contact", "rm", "10:00", None),           # worth 80 RMB: goes first
        ("salary_day", "pay", "C3", "treated", "contact", "push", "18:30", None),
        ("welcome", "w1", "C1", "treated", "contact", "sms", "10:00", None),
        ("welcome", "w1", "C2", "treated", "dropped", None, None, "consent"),            # no marketing consent
        ("welcome", "w1", "C3", "control", "control", "sms", "10:00", None),           # held out, contactable
        ("welcome", "w1", "C4", "treated", "dropped", None, None, "cap_overall_day"),  # one contact a day: outflow won
    ]
    by = {(r["strategy"], r["customer_id"]): r for r in lists}
    assert by[("welcome", "C1")]["script_id"] == "welcome.sms"
    assert by[("welcome", "C1")]["script_key"] == "welcome.sms@2024-06-30#C1"
    assert by[("welcome", "C1")]["holdout_draw"] == pytest.approx(0.805, abs=1e-3)
    assert by[("outflow", "C4")]["cost"] == 20.0 and by[("welcome", "C1")]["cost"] == 0.05
    assert by[("welcome", "C4")]["detail"] == "sms: cap_overall_day"
    assert by[("outflow", "C4")]["offer"] == "TD1Y"


def test_a_week_later_the_second_wave_follows_non_responders_and_the_control_group(ctx):
    run_day(ctx, D)
    publish_insight(ctx.lake, D2)
    aud, lists = run_day(ctx, D2)
    assert pick(aud, "strategy", "wave", "customer_id", "reason") == [
        ("welcome", "w1", "C2", "digital_share_90d=0.2500, stage=honeymoon"),  # dropped last week: may enter now
        ("welcome", "w1", "C4", "digital_share_90d=0.2500, stage=honeymoon"),
        ("welcome", "w2", "C1", "wave w1 on 2024-06-30: no response"),
        ("welcome", "w2", "C3", "wave w1 on 2024-06-30: control"),
    ]
    assert pick(lists, "wave", "customer_id", "status", "channel", "dropped_by") == [
        ("w1", "C2", "dropped", None, "consent"),
        ("w1", "C4", "contact", "sms", None),
        ("w2", "C1", "contact", "rm", None),
        ("w2", "C3", "control", "rm", None),
    ]


def test_re_running_a_day_writes_identical_bytes(ctx):
    run_day(ctx, D)
    first = {k: v for k, v in lake_fingerprint(ctx).items() if k.startswith(("audiences/", "lists/"))}
    run_day(ctx, D)
    again = {k: v for k, v in lake_fingerprint(ctx).items() if k.startswith(("audiences/", "lists/"))}
    # audiences, lists, reassessments, values, two manifests, two config copies
    assert first == again and len(first) == 8


def test_an_audience_naming_an_unknown_column_stops_the_run_before_anything_is_written(ctx):
    from lifeloop.errors import ConfigError

    text = STRATEGIES.replace("audience: \"birthday_today\"", "audience: \"birthday_tday\"")
    (ctx.config_dir / "strategies.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        ctx.run(D, ["audiences"])
    assert "config/strategies.yaml:" in err.value.render() and "field strategies[3].audience" in err.value.render()
    assert "birthday_today" in err.value.render()
    assert not ctx.lake.exists("audiences", D)
