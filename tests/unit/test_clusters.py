"""Clusters: k chosen by silhouette, identities kept on re-fit, names that stick, words for profiles."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.config.clusters import ClustersConfig
from lifeloop.errors import ConfigError, NotFoundError
from lifeloop.insight.cluster_registry import load_registry, match, name_cluster, update_registry
from lifeloop.insight.clusters import assign, describe, fit, matrix, refit, trait_text
from lifeloop.store.lake import Lake

D1, D2 = dt.date(2024, 5, 31), dt.date(2024, 6, 30)

CONFIG = ClustersConfig.model_validate({
    "features": [
        {"name": "aum", "label": "AUM", "log1p": True},
        {"name": "digital_share_90d", "label": "digital share", "high": "mostly mobile", "low": "mostly branch"},
        {"name": "products_held", "label": "products", "high": "many products", "low": "few products"},
    ],
    "k": {"min": 2, "max": 5}, "seed": 7, "silhouette_sample": 500, "match_threshold": 1.0})

# three kinds of customer: rich branch users with many products, young digital savers, plain depositors
GROUPS = {"rich": (2_000_000, 0.1, 6), "digital": (30_000, 0.9, 2), "plain": (5_000, 0.3, 1)}


def book(seed: int, per_group: int = 60, groups=GROUPS) -> pa.Table:
    """A feature table of well separated groups with a little noise; customer ids name their group."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, (aum, digital, products) in groups.items():
        for i in range(per_group):
            rows.append({"customer_id": f"{g}_{i:03d}", "aum": float(aum * rng.uniform(0.8, 1.25)),
                         "digital_share_90d": float(np.clip(digital + rng.normal(0, 0.04), 0, 1)),
                         "products_held": int(products + rng.integers(0, 2))})
    return pa.Table.from_pylist(rows)


def cluster_of(table: pa.Table) -> dict[str, int]:
    return dict(zip(table["customer_id"].to_pylist(), table["cluster_id"].to_pylist(), strict=False))


def test_three_separated_groups_give_three_clusters_chosen_by_silhouette():
    _, x = matrix(book(1), CONFIG)
    result = fit(x, CONFIG)
    assert result.k == 3
    assert result.silhouettes[3] == max(result.silhouettes.values())
    assert "highest silhouette" in result.criterion and "k=2..5" in result.criterion


def test_money_is_compared_on_a_log_scale_and_empty_values_are_filled():
    table = pa.table({"customer_id": ["a", "b"], "aum": [None, 99.0], "digital_share_90d": [0.5, None],
                      "products_held": [1, 2]})
    _, x = matrix(table, CONFIG)
    assert x[0].tolist() == [0.0, 0.5, 1.0]
    assert x[1, 0] == pytest.approx(np.log(100.0))
    assert x[1, 1] == 0.0


def test_refitting_on_next_month_keeps_every_cluster_id_and_most_customers_keep_theirs(tmp_path):
    lake = Lake(tmp_path / "lake")
    first = refit(lake, book(1), CONFIG, D1)
    assert first["new"] == [1, 2, 3] and first["kept"] == [] and first["retired"] == []
    before = cluster_of(assign(book(1), load_registry(lake), CONFIG))
    # next month: the same customers, balances and habits moved a little
    second = refit(lake, book(2), CONFIG, D2)
    assert second["kept"] == [1, 2, 3] and second["new"] == [] and second["retired"] == []
    after = cluster_of(assign(book(2), load_registry(lake), CONFIG))
    same = sum(before[c] == after[c] for c in before)
    assert same / len(before) >= 0.95
    # and the ids mean the same group of people (no permutation)
    for g in GROUPS:
        assert {before[c] for c in before if c.startswith(g)} == {after[c] for c in after if c.startswith(g)}


def test_an_analyst_name_sticks_across_a_refit(tmp_path):
    lake = Lake(tmp_path / "lake")
    refit(lake, book(1), CONFIG, D1)
    rich = cluster_of(assign(book(1), load_registry(lake), CONFIG))["rich_000"]
    name_cluster(lake, rich, "Private-banking prospects", by="analyst1")
    refit(lake, book(2), CONFIG, D2)
    table = assign(book(2), load_registry(lake), CONFIG)
    names = dict(zip(table["customer_id"].to_pylist(), table["cluster_name"].to_pylist(), strict=False))
    assert names["rich_005"] == "Private-banking prospects"
    assert names["plain_005"].startswith("cluster ")


def test_a_genuinely_new_group_gets_a_new_id_and_a_vanished_one_is_retired(tmp_path):
    lake = Lake(tmp_path / "lake")
    refit(lake, book(1), CONFIG, D1)
    ids_before = cluster_of(assign(book(1), load_registry(lake), CONFIG))
    plain_id = ids_before["plain_000"]
    # the plain depositors left; heavy borrowers with no deposits arrived instead
    groups = {"rich": GROUPS["rich"], "digital": GROUPS["digital"], "zero": (0, 0.0, 9)}
    change = refit(lake, book(2, groups=groups), CONFIG, D2)
    assert change["new"] == [4]
    assert change["retired"] == [plain_id]
    after = cluster_of(assign(book(2, groups=groups), load_registry(lake), CONFIG))
    assert after["zero_001"] == 4
    assert after["rich_001"] == ids_before["rich_001"]


def test_hungarian_matching_pairs_nearest_centroids_and_refuses_far_ones():
    old = np.array([[0.0, 0.0], [10.0, 10.0]])
    new = np.array([[10.2, 9.9], [50.0, 50.0], [0.1, -0.1]])
    assert match(old, new, np.array([1.0, 1.0]), threshold=1.0) == [1, None, 0]


def test_naming_an_unknown_cluster_is_refused_with_the_active_ids(tmp_path):
    lake = Lake(tmp_path / "lake")
    refit(lake, book(1), CONFIG, D1)
    with pytest.raises(NotFoundError, match="no cluster 42") as err:
        name_cluster(lake, 42, "x")
    assert "1, 2, 3" in err.value.hint


def test_a_feature_missing_from_the_snapshot_is_named_with_did_you_mean():
    table = book(1).rename_columns(["customer_id", "aum", "digital_share_90", "products_held"])
    with pytest.raises(ConfigError, match="digital_share_90d") as err:
        matrix(table, CONFIG)
    assert "did you mean 'digital_share_90'" in err.value.render()


def test_assigning_with_changed_features_asks_for_a_refit():
    registry, _ = update_registry(None, fit(matrix(book(1), CONFIG)[1], CONFIG), CONFIG, D1)
    other = CONFIG.model_copy(update={"features": CONFIG.features[:2]})
    with pytest.raises(ConfigError, match="changed since"):
        assign(book(1), registry, other)


def test_profiles_say_what_sets_each_cluster_apart_in_words():
    table = book(1)
    registry, _ = update_registry(None, fit(matrix(table, CONFIG)[1], CONFIG), CONFIG, D1)
    profiles = {p["cluster_id"]: p for p in describe(table, assign(table, registry, CONFIG),
                                                                      CONFIG, registry)}
    assert sum(p["customers"] for p in profiles.values()) == 180
    rich = next(p for p in profiles.values() if p["means"]["aum"] > 1_000_000)
    assert rich["customers"] == 60 and rich["share"] == pytest.approx(1 / 3, abs=1e-6)
    assert "AUM" in rich["description"] and "x the average" in rich["description"]
    assert "mostly branch" in rich["description"] or "many products" in rich["description"]
    digital = next(p for p in profiles.values() if p["means"]["digital_share_90d"] > 0.8)
    assert "mostly mobile" in digital["description"]


def test_trait_words_by_hand():
    aum, share = CONFIG.features[0], CONFIG.features[1]
    assert trait_text(aum, 2.0, 620_000, 100_000) == "AUM 6.2x the average"
    assert trait_text(share, 1.5, 0.82, 0.4) == "mostly mobile (0.82 vs 0.40)"
    assert trait_text(share, -1.5, 0.05, 0.4) == "mostly branch (0.05 vs 0.40)"
    # a tiny fraction of the average is said in words rather than as "0.0x"
    low_aum = CONFIG.features[0].model_copy(update={"low": "little AUM"})
    assert trait_text(low_aum, -2.0, 12, 98_200) == "little AUM (12 vs 98.2k on average)"


def test_a_book_too_small_to_cluster_is_published_without_clusters_and_says_why(tmp_path):
    from lifeloop.context import Context
    from tests.unit.insight_factories import AS_OF, customer, feature_table

    ctx = Context.init(tmp_path / "ws")
    rows = [customer("a"), customer("b")]
    # the default clusters.yaml reads tags the small factory does not have: give them, empty
    table = feature_table(rows)
    for name in ("investment_balance", "loan_balance", "monetary_90d", "digital_share_90d", "app_logins_90d",
                 "salary_months_6m"):
        table = table.append_column(name, pa.nulls(2, pa.float64()))
    ctx.lake.publish("features", AS_OF, lambda staging: pq.write_table(table, staging / "features.parquet"))
    result = ctx.run(AS_OF, ["clusters"])[0]
    assert result.rows == 2 and "2 customers are too few to form 3 clusters" in result.summary["notes"][0]
    assert ctx.snapshot("clusters", AS_OF)["cluster_id"].null_count == 2
    assert load_registry(ctx.lake) is None
