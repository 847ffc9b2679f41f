"""Cells (A/B tests inside a strategy): the map's ``cells:``, the second hash draw, and what the plan does with them.

The journey of the tests: ``w1`` (SMS on day 0) -> ``w2`` (call on day 7, after no response). Cell ``short``
gets ``w1`` only, cell ``long`` the whole journey with its own SMS script (script B).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

from lifeloop.config.loader import load_yaml, validate_model
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.errors import ConfigError
from lifeloop.strategy.audiences import follow_ups
from lifeloop.strategy.history import History
from lifeloop.strategy.holdout import assign_cells, cell_draws, cell_of, draws, in_cell_journey, row_cells
from lifeloop.strategy.plan import make_lists
from tests.unit.strategy_factories import D, config, consent_all, policy, strategy

FILE = "config/strategies.yaml"
WAVES = [{"id": "w1", "day": 0, "channel": "sms"},
         {"id": "w2", "day": 7, "channel": "call", "depends_on": {"wave": "w1", "outcome": "no_response"}}]
CELLS = [{"id": "short", "share": 0.5, "waves": ["w1"]},
         {"id": "long", "share": 0.5, "scripts": {"sms": {"zh": "B话术{{ customer_name }}", "en": "Script B"}}}]
MAP = """\
version: 1
holdout_salt: s
strategies:
  - id: welcome
    name: {zh: 欢迎, en: Welcome}
    owner: hq
    objective: {kind: customers, metric: activation_rate, window_days: 90}
    scenario: {kind: lifecycle}
    audience: "true"
    offer: {code: HI}
    channels: [sms, call]
    scripts:
      sms: {zh: "您好", en: "Hello"}
      call: {zh: "您好", en: "Hello"}
    waves:
      - {id: first, day: 1, channel: sms}
      - {id: second, day: 7, channel: call, depends_on: {wave: first, outcome: no_response}}
    holdout: 0.1
    start: 2024-01-01
    cells:
"""


def load(cells: str) -> StrategiesConfig:
    doc = load_yaml(FILE, text=MAP + textwrap.indent(textwrap.dedent(cells), "      "))
    return validate_model(StrategiesConfig, doc)


def refused(cells: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load(cells)
    return err.value


def welcome(**extra):
    return strategy("welcome", channels=("sms", "call"), waves=WAVES, holdout=0.1, cells=CELLS, **extra)


# ------------------------------------------------------------------------------------------ the map
def test_a_map_with_two_cells_loads_and_each_cell_knows_its_waves_and_scripts():
    cfg = load("""\
        - {id: short, share: 0.3, waves: [first]}
        - {id: long, share: 0.7, scripts: {sms: {zh: "B话术", en: "Script B"}}}
    """)
    s = cfg.strategies[0]
    assert [(c.id, c.share) for c in s.cells] == [("short", 0.3), ("long", 0.7)]
    assert s.cell_waves("short") == ["first"] and s.cell_waves("long") == ["first", "second"]
    assert s.script_for("sms", "long").zh == "B话术" and s.script_for("sms", "short").zh == "您好"
    assert s.script_for("call", "long").zh == "您好"


def test_a_strategy_without_cells_has_none_and_every_wave():
    s = strategy("plain", waves=WAVES, channels=("sms", "call"))
    assert s.cells == [] and s.cell_waves(None) == ["w1", "w2"]


def test_an_unknown_wave_in_a_cell_is_located_with_a_did_you_mean():
    err = refused("""\
        - {id: short, share: 0.5, waves: [frist]}
        - {id: long, share: 0.5}
    """)
    p = err.problems[0]
    assert (p.file, p.line, p.field) == (FILE, 21, "strategies[0].cells[0].waves[0]")
    assert "cell short names unknown wave 'frist'; did you mean 'first'?" in p.message


def test_shares_that_do_not_add_up_to_one_are_refused_at_the_cells():
    err = refused("""\
        - {id: a, share: 0.5}
        - {id: b, share: 0.4}
    """)
    p = err.problems[0]
    assert (p.line, p.field) == (20, "strategies[0].cells")
    assert "the cells' shares add up to 0.9, not 1" in p.message


def test_a_cell_id_used_twice_is_refused_at_the_second():
    err = refused("""\
        - {id: a, share: 0.5}
        - {id: a, share: 0.5}
    """)
    assert [(p.line, p.field) for p in err.problems] == [(22, "strategies[0].cells[1].id")]
    assert "cell id 'a' is used twice" in err.problems[0].message


def test_a_cell_must_start_the_journey_and_keep_the_wave_a_later_one_follows():
    err = refused("""\
        - {id: a, share: 0.5, waves: [second]}
        - {id: b, share: 0.5}
    """)
    messages = [p.message for p in err.problems]
    assert any("cell a must receive the first wave 'first'" in m for m in messages)
    assert any("cell a receives wave second but not wave first, which it follows" in m for m in messages)
    assert {p.field for p in err.problems} == {"strategies[0].cells[0].waves"}


def test_a_cell_script_needs_a_channel_of_the_strategy_and_whitelisted_variables():
    err = refused("""\
        - {id: a, share: 0.5, scripts: {push: {zh: "hi"}, sms: {zh: "{{ mobile }}"}}}
        - {id: b, share: 0.5}
    """)
    fields = {p.field: p.message for p in err.problems}
    assert "channel 'push', which is not among the strategy's channels" in fields["strategies[0].cells[0].scripts.push"]
    assert "variable 'mobile' is not allowed in scripts" in fields["strategies[0].cells[0].scripts.sms.zh"]


def test_an_audience_per_cell_is_an_unknown_key_and_a_cell_cannot_be_called_control():
    err = refused("""\
        - {id: a, share: 0.5, audience: "aum > 1"}
        - {id: b, share: 0.5}
    """)
    assert err.problems[0].field == "strategies[0].cells[0].audience" and "unknown key" in err.problems[0].message
    err = refused("""\
        - {id: control, share: 0.5}
        - {id: b, share: 0.5}
    """)
    assert "a cell cannot be called 'control'" in err.problems[0].message


# ------------------------------------------------------------------------------------------ assignment
def test_the_cell_draw_is_sha256_of_customer_strategy_cell_and_salt():
    digest = hashlib.sha256(b"C001|welcome|cell|s").digest()
    by_hand = int.from_bytes(digest[:8], "big") / 2 ** 64
    assert cell_draws(["C001"], "welcome", "s") == [by_hand]
    # cell k takes [s1 + ... + s(k-1), s1 + ... + sk): 0.3 / 0.7
    cells = [("a", 0.3), ("b", 0.7)]
    assert (cell_of(0.0, cells), cell_of(0.2999, cells), cell_of(0.3, cells), cell_of(0.999999, cells)) == (
        "a", "a", "b", "b")
    assert assign_cells(["C001"], "welcome", "s", cells) == ["a" if by_hand < 0.3 else "b"]


def test_shares_hold_within_sampling_error_on_ten_thousand_customers():
    ids = [f"C{i:06d}" for i in range(10_000)]
    got = assign_cells(ids, "welcome", "lifeloop-2024", [("a", 0.2), ("b", 0.3), ("c", 0.5)])
    for cell, share in (("a", 0.2), ("b", 0.3), ("c", 0.5)):
        sd = math.sqrt(share * (1 - share) / len(ids))
        assert abs(got.count(cell) / len(ids) - share) < 4 * sd, cell


def test_the_cell_draw_is_independent_of_the_holdout_draw():
    ids = [f"C{i:06d}" for i in range(10_000)]
    holdout, cell = draws(ids, "welcome", "salt"), cell_draws(ids, "welcome", "salt")
    n = len(ids)
    mh, mc = sum(holdout) / n, sum(cell) / n
    corr = (sum((h - mh) * (c - mc) for h, c in zip(holdout, cell, strict=False))
            / math.sqrt(sum((h - mh) ** 2 for h in holdout) * sum((c - mc) ** 2 for c in cell)))
    assert abs(corr) < 4 / math.sqrt(n)
    # within the 10% that the holdout draw would put in control, cells keep their shares
    low = [c for h, c in zip(holdout, cell, strict=False) if h < 0.1]
    share = sum(1 for c in low if c < 0.5) / len(low)
    assert abs(share - 0.5) < 4 * math.sqrt(0.25 / len(low))


def test_cells_are_identical_in_a_fresh_interpreter_with_another_hash_seed():
    ids = [f"C{i:05d}" for i in range(300)]
    here = assign_cells(ids, "s1", "salt", [("a", 0.5), ("b", 0.5)])
    code = ("import json; from lifeloop.strategy.holdout import assign_cells; "
            f"print(json.dumps(assign_cells({ids!r}, 's1', 'salt', [('a', 0.5), ('b', 0.5)])))")
    env = {**os.environ, "PYTHONHASHSEED": "999"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == str(here).replace("'", '"')


def test_control_rows_and_strategies_without_cells_have_no_cell():
    cfg = config(welcome(), strategy("plain"))
    got = row_cells(["a", "a", "b"], ["welcome", "plain", "welcome"], [False, False, True], cfg)
    assert got[0] in ("short", "long") and got[1:] == [None, None]


# ------------------------------------------------------------------------------------------ the plan
def customers_by_cell(cfg, n=40):
    """Treated customers of ``welcome`` by cell, and its control customers."""
    s = cfg.strategy("welcome")
    ids = [f"C{i:03d}" for i in range(n)]
    control = [d < s.holdout for d in draws(ids, "welcome", cfg.holdout_salt)]
    cells = row_cells(ids, ["welcome"] * n, control, cfg)
    out: dict[str, list[str]] = {"control": [], "short": [], "long": []}
    for c, ctl, cell in zip(ids, control, cells, strict=False):
        out["control" if ctl else cell].append(c)
    return out


def test_the_lists_carry_each_treated_customers_cell_and_the_cells_own_script():
    cfg = config(welcome(), holdout_salt="s")
    who = customers_by_cell(cfg)
    assert who["control"] and who["short"] and who["long"]
    ids = sorted(sum(who.values(), []))
    audiences = pa.Table.from_pylist([dict(customer_id=c, strategy="welcome", wave="w1", rm_id="RM1", reason="t")
                                      for c in ids])
    lists = make_lists(audiences, cfg, policy(), History.from_rows(consent=consent_all(ids)), D)
    rows = {r["customer_id"]: r for r in lists.to_pylist()}
    for c in who["control"]:
        assert (rows[c]["group"], rows[c]["cell"]) == ("control", None)
    for c in who["short"]:   # the strategy's own SMS script
        assert (rows[c]["cell"], rows[c]["script_id"], rows[c]["script_key"]) == (
            "short", "welcome.sms", f"welcome.sms@{D.isoformat()}#{c}")
    for c in who["long"]:    # script B: the id names the cell, so dispatch and `why` can tell them apart
        assert (rows[c]["cell"], rows[c]["script_id"], rows[c]["script_key"]) == (
            "long", "welcome.long.sms", f"welcome.long.sms@{D.isoformat()}#{c}")


def test_a_later_wave_the_cell_skips_is_not_a_candidate_while_control_follows_the_journey():
    cfg = config(welcome(), holdout_salt="s")
    who = customers_by_cell(cfg)
    entered = D - dt.timedelta(days=7)
    contacts = [dict(customer_id=c, strategy="welcome", wave="w1", channel="sms", contact_date=entered,
                     treated=group != "control", outcome=None) for group, ids in who.items() for c in ids]
    later = follow_ups(cfg, History.from_rows(contacts=contacts).contacts, D)
    assert set(later["customer_id"].to_pylist()) == set(who["control"] + who["short"] + who["long"])
    kept = in_cell_journey(later, cfg)
    assert sorted(kept["customer_id"].to_pylist()) == sorted(who["control"] + who["long"])
    # the plan does the same for audiences made elsewhere: no row at all (not even dropped) for "short"
    audiences = later.append_column("rm_id", pa.array(["RM1"] * later.num_rows, pa.string()))
    lists = make_lists(audiences.select(["customer_id", "strategy", "wave", "rm_id", "reason"]), cfg, policy(),
                       History.from_rows(consent=consent_all(sum(who.values(), []))), D)
    assert sorted(lists["customer_id"].to_pylist()) == sorted(who["control"] + who["long"])
    assert set(lists["wave"].to_pylist()) == {"w2"}


def test_a_map_without_cells_plans_exactly_as_before_with_an_empty_cell_column():
    plain = strategy("welcome", channels=("sms", "call"), waves=WAVES, holdout=0.1)
    cfg = config(plain, holdout_salt="s")
    ids = [f"C{i:03d}" for i in range(30)]
    audiences = pa.Table.from_pylist([dict(customer_id=c, strategy="welcome", wave="w1", rm_id="RM1", reason="t")
                                      for c in ids])
    lists = make_lists(audiences, cfg, policy(), History.from_rows(consent=consent_all(ids)), D)
    assert lists["cell"].null_count == lists.num_rows
    assert set(lists["script_id"].drop_null().to_pylist()) == {"welcome.sms"}
    assert in_cell_journey(audiences, cfg) is audiences


# ------------------------------------------------------------------------------------------ dispatch
def test_dispatch_renders_the_cells_own_script_under_its_script_id():
    from lifeloop.execution.dispatch import Scripts, contacts_from_lists

    cfg = config(welcome(), holdout_salt="s")
    scripts = Scripts(cfg, language="zh")
    lists = pa.Table.from_pylist([
        dict(as_of=D, customer_id=c, strategy="welcome", wave="w1", group="treated", cell=cell, status="contact",
             channel="sms", send_at=None, purpose="marketing", script_id=sid, script_key=f"{sid}@{D}#{c}", offer="HI",
             priority=50, rm_id="RM1")
        for c, cell, sid in (("A", "short", "welcome.sms"), ("B", "long", "welcome.long.sms"))])
    treated, _ = contacts_from_lists(lists, scripts=scripts, customers={"A": {"name": "王小明"}, "B": {"name": "李娜"}})
    by = {t.customer_id: t for t in treated}
    assert by["A"].payload["script"] == "您好{{ customer_name }}".replace("{{ customer_name }}", "王**")
    assert by["B"].payload["script"] == "B话术李*"
    assert (by["A"].payload["cell"], by["B"].payload["cell"]) == ("short", "long")
    assert (by["A"].script_id, by["B"].script_id) == ("welcome.sms", "welcome.long.sms")
    assert by["A"].key != by["B"].key


def test_the_templates_commented_cell_split_is_valid_and_the_default_map_has_no_share_cells():
    from lifeloop.config.strategies import selection_cells
    from lifeloop.strategy.checks import check_structure
    from lifeloop.workspace import template_root

    text = (template_root() / "config" / "strategies.yaml").read_text(encoding="utf-8")
    plain = validate_model(StrategiesConfig, load_yaml(FILE, text=text))
    # the only cells of the default map: churn_warning's model and rule selection cells (模型组 vs 非模型组)
    assert [s.id for s in plain.strategies if s.cells] == ["churn_warning"]
    assert selection_cells(plain.strategy("churn_warning"))
    start = text.index("    # cells:")
    end = text.index("\n\n", start)
    uncommented = "\n".join(line.replace("    # ", "    ", 1) for line in text[start:end].splitlines())
    doc = load_yaml(FILE, text=text[:start] + uncommented + text[end:])
    cfg = validate_model(StrategiesConfig, doc)
    check_structure(cfg, doc)
    s = cfg.strategy("honeymoon_welcome")
    assert [(c.id, s.cell_waves(c.id)) for c in s.cells] == [
        ("sms_only", ["d1_sms"]), ("with_call", ["d1_sms", "d7_rm_call", "d30_push"])]
    assert s.script_for("sms", "with_call").zh != s.script_for("sms", "sms_only").zh
