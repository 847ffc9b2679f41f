"""``check_workspace``: every config file and rule checked at once, before any step, without snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeloop.context import Context
from lifeloop.errors import ConfigError
from lifeloop.preflight import check_workspace
from tests.factories import write_canonical


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


@pytest.fixture
def ctx(tmp_path):
    with Context.init(tmp_path / "ws") as ctx:
        yield ctx


@pytest.fixture
def four_mistakes(ctx):
    """A typo'd audience column, an unknown stage, an unknown segments key and a bad threshold name."""
    cfg = ctx.config_dir
    edit(cfg / "strategies.yaml", "AND tenure_days <= 30", "AND tenur_days <= 30")
    edit(cfg / "strategies.yaml", "  dormant_min_aum: 1000", "  Vip_days: 3\n  dormant_min_aum: 1000")
    edit(cfg / "lifecycle.yaml", "    stage: churned\n    when: \"coalesce(products_held, 0) = 0\"",
         "    stage: churnd\n    when: \"coalesce(products_held, 0) = 0\"")
    edit(cfg / "segments.yaml", "tier_measure: aum", "tier_mesure: aum")
    return cfg


def test_the_default_template_checks_clean_and_names_every_file_it_read(ctx):
    report = check_workspace(ctx.config_dir)
    assert (report.errors, report.warnings) == ([], [])
    assert report.files == ["config/tags.yaml", "config/lifecycle.yaml", "config/segments.yaml",
                            "config/clusters.yaml", "config/strategies.yaml", "config/contact_policy.yaml",
                            "config/channels.yaml", "config/events.yaml"]
    report.raise_for_errors()  # nothing to raise


def test_four_mistakes_in_three_files_are_all_reported_at_once_each_with_file_line_and_field(ctx, four_mistakes):
    assert ctx.lake.dates("features") == []  # found without any snapshot published
    report = check_workspace(four_mistakes)
    cfg = four_mistakes
    found = [(p.file, p.line, p.field, p.message) for p in report.errors]
    assert found == [
        ("config/lifecycle.yaml", line_of(cfg / "lifecycle.yaml", "stage: churnd"), "rules[1].stage",
         "unknown stage 'churnd'; did you mean 'churned'?"),
        ("config/segments.yaml", line_of(cfg / "segments.yaml", "tier_mesure"), "tier_mesure",
         "unknown key 'tier_mesure'; did you mean 'tier_measure'?"),
        ("config/strategies.yaml", line_of(cfg / "strategies.yaml", "thresholds:"), "thresholds",
         "Value error, threshold name 'Vip_days' must be lower_snake_case (letters, digits, _), starting with a "
         "letter"),
        ("config/strategies.yaml", line_of(cfg / "strategies.yaml", "tenur_days"), "strategies[0].audience",
         "unknown column 'tenur_days' in \"stage IN ('onboarding', 'honeymoon') AND tenur_days <= 30 AND "
         "coalesce(products_held, 0) > 0\""),
    ]
    assert all(p.hint for p in report.errors)  # every problem says what to do
    assert "did you mean 'tenure_days'" in report.errors[-1].hint


def test_raise_for_errors_raises_one_config_error_listing_every_problem(ctx, four_mistakes):
    with pytest.raises(ConfigError) as info:
        check_workspace(four_mistakes).raise_for_errors()
    assert info.value.message == "4 problem(s) in the configuration"
    assert len(info.value.problems) == 4 and "lifeloop check" in info.value.hint


def test_a_rule_that_can_never_fire_is_a_warning_not_an_error(ctx):
    edit(ctx.config_dir / "strategies.yaml", "AND tenure_days <= 30", "AND tenure_days <= 30 AND tenure_days > 40")
    report = check_workspace(ctx.config_dir)
    assert report.errors == []
    assert [(w.field, w.message) for w in report.warnings] == [
        ("strategies[0].audience", "can never match anyone: the bounds on 'tenure_days' contradict each other")]


def test_a_missing_file_and_a_broken_tags_file_are_errors_and_hide_only_the_checks_that_need_them(ctx):
    (ctx.config_dir / "clusters.yaml").unlink()
    tags = ctx.config_dir / "tags.yaml"
    tags.write_text(tags.read_text(encoding="utf-8").replace("    aggregate: days_since", "    aggregat: days_since",
                                                             1), encoding="utf-8")
    report = check_workspace(ctx.config_dir)
    files = {p.file for p in report.errors}
    assert files == {"config/tags.yaml", "config/clusters.yaml"}
    assert [p.message for p in report.errors if p.file == "config/clusters.yaml"] == ["file not found"]


def test_offers_are_checked_against_the_products_of_the_newest_bank_batch_only_when_a_lake_is_given(ctx, tmp_path):
    ctx.ingest(write_canonical(tmp_path / "extracts"))
    assert check_workspace(ctx.config_dir).errors == []
    with_lake = check_workspace(ctx.config_dir, lake=ctx.lake)
    # the template's wealth products and card are not in the factory bank's catalogue (CUR, TD1Y, CARD)
    assert [(p.field, p.message.split(";")[0]) for p in with_lake.errors] == [
        ("strategies[0].offer.product_id", "unknown product 'WM090' (not in the bank's product catalogue)"),
        ("strategies[4].offer.product_id", "unknown product 'WM180' (not in the bank's product catalogue)"),
        ("strategies[5].offer.product_id", "unknown product 'WM030' (not in the bank's product catalogue)"),
        ("strategies[7].offer.product_id", "unknown product 'CC_STD' (not in the bank's product catalogue)"),
    ]


def test_a_replay_clock_next_to_a_live_gateway_is_a_warning_naming_the_line(ctx):
    path = ctx.config_dir / "channels.yaml"
    edit(path, "max_attempts: 5 ", 'max_attempts: 5\nreplay_at: "19:00" ')
    assert check_workspace(ctx.config_dir).warnings == []          # file exports only: a replay is fine
    edit(path, "  sms: {kind: file, folder: exports, format: csv, recipient_role: analyst}",
         "  sms: {kind: webhook, url: 'https://sms.bank.internal/send'}")
    (warning,) = check_workspace(ctx.config_dir).warnings
    assert (warning.field, warning.line) == ("replay_at", line_of(path, "replay_at"))
    assert "sms goes to a live gateway" in warning.message and "remove replay_at" in warning.hint


def test_a_file_that_is_not_even_yaml_is_reported_not_a_crash(ctx):
    path = ctx.config_dir / "channels.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "channels: {}\n", encoding="utf-8")   # a duplicate key
    report = check_workspace(ctx.config_dir)
    [p] = [e for e in report.errors if e.file == "config/channels.yaml"]
    assert p.line and "channels" in p.message


def test_events_yaml_is_checked_with_file_line_and_field_and_its_links_to_strategies_warned(ctx):
    path = ctx.config_dir / "events.yaml"
    path.write_text("moments:\n  - {id: salary_credited, kind: salary_credited, scene: 代发工资到账}\n"
                    "  - {id: big_out, kind: large_outflow, amount: -5}\n"
                    "  - {id: orphan, kind: low_balance, below: 10}\n"
                    "sources:\n  - {name: core, token_sha256: not-a-hash}\n", encoding="utf-8")
    report = check_workspace(ctx.config_dir)
    errors = {(p.file, p.line, p.field) for p in report.errors}
    assert errors == {("config/events.yaml", 3, "moments[1].large_outflow.amount"),
                      ("config/events.yaml", 6, "sources[0].token_sha256")}
    path.write_text("moments:\n  - {id: salary_credited, kind: salary_credited, scene: 代发工资到账}\n"
                    "  - {id: orphan, kind: low_balance, below: 10}\n", encoding="utf-8")
    report = check_workspace(ctx.config_dir)
    assert report.errors == []
    warned = {(p.file, p.line, p.field): p.message for p in report.warnings}
    assert "no strategy reacts to it" in warned[("config/events.yaml", 3, "id")]
    # the template's large-outflow strategy now has no moment: it reacts in the batch only
    assert any(p.file == "config/strategies.yaml" and p.field == "scenario.name" and "大额转出" in p.message
               for p in report.warnings)
