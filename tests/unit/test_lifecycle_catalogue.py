"""The default lifecycle and segment templates compile against the default feature catalogue (tags.yaml)."""

from __future__ import annotations

import pytest

from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.loader import load_model
from lifeloop.config.segments import SegmentsConfig
from lifeloop.engine.compile import feature_columns
from lifeloop.insight import lifecycle, segments
from lifeloop.workspace import template_root
from tests.unit.insight_factories import AS_OF, FEATURE_SCHEMA

CONFIG = template_root("bank") / "config"


@pytest.fixture(scope="module")
def catalogue_columns():
    catalogue = pytest.importorskip("lifeloop.insight.catalogue")
    cat = catalogue.load_catalogue(CONFIG / "tags.yaml", "config/tags.yaml")
    return {"customer_id": "VARCHAR", **{t.name: t.type for t in cat.tags}}


def test_the_default_stage_rules_compile_against_the_default_catalogue(catalogue_columns):
    config, doc = load_model(LifecycleConfig, CONFIG / "lifecycle.yaml")
    compiled = lifecycle.compile_stages(config, catalogue_columns, AS_OF, doc)
    assert compiled.warnings == []


def test_the_default_segments_compile_against_the_default_catalogue(catalogue_columns):
    config, doc = load_model(SegmentsConfig, CONFIG / "segments.yaml")
    _, warnings = segments.segments_query(config, catalogue_columns, "features", AS_OF, doc)
    assert warnings == []


def test_the_test_feature_tables_use_the_catalogue_types(catalogue_columns):
    ours = feature_columns(FEATURE_SCHEMA)
    assert {n: t for n, t in ours.items() if catalogue_columns.get(n) != t} == {}


def test_the_docs_list_the_default_stage_rules_in_their_decision_order():
    import re
    from pathlib import Path

    config, _ = load_model(LifecycleConfig, CONFIG / "lifecycle.yaml")
    text = (Path(__file__).resolve().parents[2] / "docs" / "insight.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| (\d+) \| (\w+) \| (\w+)", text, flags=re.M)
    assert [(r, s.split()[0]) for _, r, s in documented] == [(r.rule, r.stage) for r in config.rules]
