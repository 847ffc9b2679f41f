"""Champion and challenger (冠军/挑战者): a challenger scores in shadow or takes a share of customers picked by a
hash of the customer id; ``rollback`` restores the previous champion, and the scores after it are the same
bytes as before the promotion. Every change is permission-checked and on the audit log (SQLite and PostgreSQL).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.config.shelf import CHURN_FEATURES, BoostingSpec, ModelSpec
from lifeloop.context import Context
from lifeloop.data.access import Grant, PermissionDenied, Principal
from lifeloop.errors import DataError
from lifeloop.models import catalogue, registry
from lifeloop.models.labels import matrix
from lifeloop.store.ops.database import session_factory, unit_of_work
from lifeloop.store.ops.migrations import upgrade
from lifeloop.store.ops.models import AuditEntry
from tests.conformance.test_scores_duckdb_vs_spark import AS_OF, features_table, label
from tests.factories import allow_days_after_batch
from tests.fixtures_bank import publish_tiny_bank
from tests.ops_fixtures import database_url  # noqa: F401 - fixture

N = 400


@pytest.fixture
def ctx(tmp_path, database_url, monkeypatch):  # noqa: F811
    """A workspace with a features snapshot and two fitted versions of ``churn`` (v1, v2), v1 promoted."""
    monkeypatch.setenv("LIFELOOP_DATABASE_URL", database_url)
    upgrade(database_url)
    features = features_table(N)
    X = matrix(features.sort_by("customer_id"), CHURN_FEATURES)
    y = label(X)
    context = allow_days_after_batch(Context.init(tmp_path / "bank"), 400)
    publish_tiny_bank(context.lake)
    context.lake.publish("features", AS_OF, lambda staging: pq.write_table(features, staging / "features.parquet"))
    for iterations in (10, 30):
        spec = ModelSpec(name="churn", estimator="hgb", boosting=BoostingSpec(max_iter=iterations, threads=1))
        registry.save(context.lake, catalogue.for_spec(spec)(spec).fit(X, y), {"as_of": AS_OF.isoformat()}, "test")
    context.promote_model("churn", "v1", reason="first model")
    yield context
    context.close()


def scores(ctx, name: str = "scores.parquet") -> bytes:
    ctx.run(AS_OF, steps=["scores"])
    return (ctx.lake.snapshot_dir("scores", AS_OF) / name).read_bytes()


def read(ctx, name: str = "scores.parquet") -> dict[str, dict]:
    rows = pq.read_table(ctx.lake.snapshot_dir("scores", AS_OF) / name).to_pylist()
    return {(r["customer_id"], r["version"]): r for r in rows}


def audit_actions(database_url: str) -> list[tuple[str, str]]:  # noqa: F811
    with unit_of_work(session_factory(database_url)) as s:
        rows = s.execute(sa.select(AuditEntry.action, AuditEntry.target_id).where(AuditEntry.target_type == "model")
                         .order_by(AuditEntry.id)).all()
    return [tuple(r) for r in rows]


def test_rollback_restores_the_scores_of_before_the_promotion_byte_for_byte(ctx, database_url):  # noqa: F811
    before = scores(ctx)
    ctx.promote_model("churn", "v2", reason="v2: AUC 0.86 vs 0.84")
    after = scores(ctx)
    assert after != before and {r["version"] for r in read(ctx).values()} == {"v2"}
    entry = ctx.rollback_model("churn", reason="v2 over-selects new customers")
    assert (entry["version"], entry["replaced"]) == ("v1", "v2")
    assert registry.champion(ctx.lake, "churn") == "v1"
    assert scores(ctx) == before
    assert [h["action"] for h in registry.history(ctx.lake, "churn")] == ["fit", "fit", "promote", "promote",
                                                                           "rollback"]
    assert audit_actions(database_url)[-3:] == [("model.promote", "churn/v1"), ("model.promote", "churn/v2"),
                                                ("model.rollback", "churn/v1")]
    with pytest.raises(DataError, match="no earlier champion to roll back to"):
        ctx.rollback_model("churn", reason="again")


def test_a_shadow_challenger_is_scored_but_no_rule_reads_it(ctx):
    before = scores(ctx)
    ctx.challenge_model("churn", "v2", 0.0, reason="shadow v2 for a month")
    assert scores(ctx) == before                          # what the rules read does not change
    shadow = read(ctx, "shadow.parquet")
    assert {v for _, v in shadow} == {"v2"} and len(shadow) == N
    assert sorted(np.bincount([r["decile"] for r in shadow.values()])[1:]) == [N // 10] * 10
    used = ctx.lake.manifest("scores", AS_OF)["models"]["churn"]
    assert used["version"] == "v1" and used["challenger"]["mode"] == "shadow" and used["challenger"]["customers"] == 0
    ctx.end_challenge("churn", reason="seen enough")
    assert registry.challenger(ctx.lake, "churn") is None
    assert scores(ctx) == before and not (ctx.lake.snapshot_dir("scores", AS_OF) / "shadow.parquet").exists()


def test_a_challenger_with_a_traffic_share_is_seen_by_the_rules_for_the_customers_its_hash_picks(ctx):
    ctx.run(AS_OF, steps=["scores"])
    champion = read(ctx)
    ctx.challenge_model("churn", "v2", 0.3, reason="v2 on 30% of customers")
    ctx.promote_model("churn", "v1", reason="promoting the champion again leaves the challenger")
    assert registry.challenger(ctx.lake, "churn") == {"version": "v2", "share": 0.3}
    ctx.run(AS_OF, steps=["scores"])
    seen, kept = read(ctx), read(ctx, "shadow.parquet")

    def picked(cid: str) -> bool:       # by hand: the first 8 bytes of sha256("model|churn|<id>") below 0.3 * 2^64
        return int.from_bytes(hashlib.sha256(f"model|churn|{cid}".encode()).digest()[:8], "big") < 0.3 * 2**64

    customers = sorted({c for c, _ in champion})
    expected = {c: "v2" if picked(c) else "v1" for c in customers}
    assert {c: v for c, v in seen} == expected
    assert 0.2 < sum(v == "v2" for v in expected.values()) / N < 0.4
    assert {c: v for c, v in kept} == {c: "v1" if v == "v2" else "v2" for c, v in expected.items()}
    for c, v in seen:                                      # the champion's rows are the champion's own scores
        if v == "v1":
            assert seen[(c, v)] == champion[(c, v)]
    used = ctx.lake.manifest("scores", AS_OF)["models"]["churn"]["challenger"]
    assert (used["version"], used["share"], used["mode"]) == ("v2", 0.3, "traffic")
    assert used["customers"] == sum(v == "v2" for v in expected.values())
    shown = CliRunner().invoke(app, ["--workspace", str(ctx.workspace), "models", "show", "churn", "v1"])
    assert shown.exit_code == 0, shown.output
    assert "active version: v1; challenger: v2 for 30% of customers" in " ".join(shown.output.split())
    ctx.promote_model("churn", "v2", reason="v2 won")          # promoting the challenger ends the challenge
    assert registry.state(ctx.lake, "churn")["challenger"] is None
    assert ctx.model("churn")["challenger"] is None


def test_only_a_principal_allowed_to_promote_may_challenge_or_roll_back(ctx, database_url):  # noqa: F811
    with Context(ctx.workspace, principal=Principal("ana", "Ana", (Grant("analyst"),))) as analyst:
        with pytest.raises(PermissionDenied):
            analyst.rollback_model("churn", reason="try")
        with pytest.raises(PermissionDenied):
            analyst.challenge_model("churn", "v2", 0.5, reason="try")
    with pytest.raises(DataError, match="is the champion"):
        ctx.challenge_model("churn", "v1", 0.1, reason="itself")
    with pytest.raises(DataError, match="share is a fraction"):
        ctx.challenge_model("churn", "v2", 1.0, reason="all")
    assert registry.challenger(ctx.lake, "churn") is None
    assert ("access.refused",) in {(a,) for a, in _actions(database_url)}


def _actions(database_url: str) -> list[tuple[str]]:  # noqa: F811
    with unit_of_work(session_factory(database_url)) as s:
        return [tuple(r) for r in s.execute(sa.select(AuditEntry.action)).all()]
