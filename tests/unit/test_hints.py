"""Hints name real things: every `--steps X` a hint suggests is a step `lifeloop run` accepts."""

import datetime as dt
import re
from pathlib import Path

import pytest

from lifeloop.errors import DataError
from lifeloop.pipeline import STEPS
from lifeloop.store.lake import run_hint
from tests.factories import new_context, write_canonical
from tests.refusals import state

SRC = Path(__file__).resolve().parents[2] / "src" / "lifeloop"
STEP_NAMES = {getattr(s, "name", s) for s in STEPS}


def test_every_steps_option_named_in_the_source_is_a_real_step():
    named = {}
    for path in SRC.rglob("*.py"):
        for match in re.finditer(r"--steps (\{[^}]*\}|[a-z_,]+)", path.read_text(encoding="utf-8")):
            for name in ([match.group(1)] if match.group(1).startswith("{") else match.group(1).split(",")):
                named.setdefault(name, []).append(path.relative_to(SRC).as_posix())
    assert named, "the scan found no hints at all"
    dynamic = {n for n in named if n.startswith("{")}
    assert dynamic <= {"{STEP_OF_AREA.get(area, area)}"}, f"hints naming steps by other variables: {dynamic}"
    unknown = {n: files for n, files in named.items() if n not in STEP_NAMES and n not in dynamic}
    assert not unknown, f"hints suggest steps that do not exist: {unknown}"


def test_the_hint_for_a_missing_snapshot_names_the_step_that_publishes_its_area():
    for area in ("features", "lifecycle", "segments", "clusters", "outcomes", "evidence", "audiences", "lists"):
        step = re.search(r"--steps (\w+)", run_hint(area)).group(1)
        assert step in STEP_NAMES, area
    assert "--steps plan" in run_hint("lists", dt.date(2024, 3, 31))
    assert "lifeloop ingest" in run_hint("bank")


def test_dispatch_before_a_plan_suggests_the_plan_step_and_changes_nothing(tmp_path):
    ctx = new_context(tmp_path)
    ctx.ingest(write_canonical(tmp_path / "src"))
    before = state(ctx)
    with pytest.raises(DataError) as info:
        ctx.dispatch(dt.date(2024, 3, 31))
    assert str(info.value) == ("no lists snapshot as of 2024-03-31\n"
                               "What to do: run `lifeloop run --as-of 2024-03-31 --steps plan` first")
    assert state(ctx) == before
