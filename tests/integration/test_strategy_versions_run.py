"""The next run uses the approved version (策略版本, maker-checker), on a small simulated bank (300 customers).

An analyst drafts a new version of a strategy and a branch manager a variant for their branch; each is
submitted; the author cannot approve their own; a second user with the approver role approves both. The
audiences step re-run on the day then writes, in ``lake/audiences/as_of=D/audiences.parquet``: the head-office
strategy with its new rule (none of its customers fails the new condition), the branch's customers under
the variant's id and no longer under the head-office strategy, and the live map's text next to the snapshot.
Expected sets are computed from the first run's rows and the features snapshot, not by the code under test.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import yaml

from lifeloop.context import Context
from lifeloop.data.access import PermissionDenied
from lifeloop.settings import Credentials
from lifeloop.strategy.editor import live_version_text

STEPS = ["features", "lifecycle", "segments", "audiences"]


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    base = tmp_path_factory.mktemp("versionsbank")
    ctx = Context.init(base / "ws")
    sim = ctx.simulate(base / "extracts", customers=300, days=45, seed=5)
    ctx.ingest(base / "extracts", as_of=sim.as_of)
    ctx.run(sim.as_of, steps=STEPS)
    tokens = {}
    for name, role in (("ana", "analyst"), ("checker", "approver"), ("checker2", "approver")):
        tokens[name] = ctx.add_user(name, roles=[role])[1]
    yield ctx, sim.as_of, base / "ws", tokens
    ctx.close()


def as_user(ws, tokens, name):
    return Context(ws, credentials=Credentials(name, tokens[name]))


def rows(ctx, d):
    return pq.read_table(ctx.lake.snapshot_file("audiences", d)).to_pylist()


def test_drafted_submitted_and_approved_by_a_second_user_the_next_run_uses_the_new_version(bank):
    admin, d, ws, tokens = bank
    before = rows(admin, d)
    counts = {}
    for r in before:
        if r["wave"] and r["strategy"]:
            counts[r["strategy"]] = counts.get(r["strategy"], 0) + 1
    target = max(counts, key=counts.get)           # the strategy with the most first-wave customers
    features = pq.read_table(admin.lake.snapshot_file("features", d), columns=["customer_id", "aum"]).to_pylist()
    aum = {f["customer_id"]: f["aum"] for f in features}
    had = sorted({r["customer_id"] for r in before if r["strategy"] == target})
    cut = sorted(aum[c] for c in had if aum[c] is not None)[len(had) // 2]   # the new rule keeps the richer half
    with as_user(ws, tokens, "ana") as ana:
        text, live = live_version_text(ana, target, None)
        assert live == 0
        data = yaml.safe_load(text)
        data["audience"] = f"({data['audience']}) AND aum >= {cut}"
        data["holdout"] = 0.5
        draft = ana.strategy_draft(target, yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                   note="richer half only")
        assert (draft["version"], draft["status"], draft["author"]) == (1, "draft", "ana")
        assert ana.strategy_submit(target, 1)["status"] == "submitted"
        with pytest.raises(PermissionDenied):     # an analyst holds no approver role
            ana.strategy_decide(target, 1, approve=True)
    with as_user(ws, tokens, "checker") as checker:
        done = checker.strategy_decide(target, 1, approve=True, comment="ok")
        assert (done["status"], done["decided_by"]) == ("approved", "checker")
    admin.run(d, steps=["audiences"])
    after = rows(admin, d)
    now = {r["customer_id"] for r in after if r["strategy"] == target}
    # nothing was sent, so every row is a first wave: the old audience's customers with aum >= the cut
    assert now == {c for c in had if aum[c] is not None and aum[c] >= cut} and 0 < len(now) < len(had)
    copy = yaml.safe_load(admin.lake.snapshot_dir("audiences", d).joinpath("strategies.yaml").read_text("utf-8"))
    live_rule = next(s for s in copy["strategies"] if s["id"] == target)
    assert live_rule["audience"].endswith(f"AND aum >= {cut}") and live_rule["holdout"] == 0.5


def test_a_branch_variant_takes_its_branchs_customers_and_the_head_office_strategy_the_others(bank):
    admin, d, ws, tokens = bank
    customers = pq.read_table(admin.lake.bank_files(d)["customers"][0], columns=["customer_id", "branch_id"])
    branch_of = dict(zip(customers["customer_id"].to_pylist(), customers["branch_id"].to_pylist(), strict=True))
    before = rows(admin, d)
    counts = {}
    for r in before:
        counts[r["strategy"]] = counts.get(r["strategy"], 0) + 1
    target = sorted(counts, key=lambda s: (-counts[s], s))[-1 if len(counts) == 1 else 1]
    members = {r["customer_id"] for r in before if r["strategy"] == target}
    branch = sorted({branch_of[c] for c in members})[0]
    admin.add_user("bm", roles=[f"branch_manager={branch}"])
    token = admin.reset_token("bm")
    with Context(ws, credentials=Credentials("bm", token)) as bm:
        text, _ = live_version_text(bm, target, branch)
        row = bm.strategy_draft(target, text, note="our branch calls first")   # a branch manager: their branch
        assert row["branch_id"] == branch
        bm.strategy_submit(target, row["version"])
        with pytest.raises(PermissionDenied):
            bm.strategy_decide(target, row["version"], approve=True)
    with as_user(ws, tokens, "checker2") as checker:
        checker.strategy_decide(target, row["version"], approve=True, comment="一行一策 ok")
    admin.run(d, steps=["audiences"])
    after = rows(admin, d)
    variant = f"{target}__{branch.lower()}"
    in_variant = {r["customer_id"] for r in after if r["strategy"] == variant}
    in_base = {r["customer_id"] for r in after if r["strategy"] == target}
    assert in_variant == {c for c in members if branch_of[c] == branch} and in_variant
    assert all(branch_of[c] != branch for c in in_base)
    assert in_base == {c for c in members if branch_of[c] != branch}
    # the audit log holds every transition, with its actor
    with admin.ops()() as session:
        from lifeloop.store.ops.models import AuditEntry

        acts = [(e.actor, e.action) for e in session.query(AuditEntry).filter(AuditEntry.action.like("strategy.%"))]
    assert ("bm", "strategy.draft") in acts and ("bm", "strategy.submit") in acts
    assert ("checker2", "strategy.approve") in acts and ("ana", "strategy.draft") in acts
