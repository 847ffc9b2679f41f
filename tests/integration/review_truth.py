"""Shared by the review-vs-truth tests: one simulated bank, many what-if branches of its future.

``base_workspace`` simulates and ingests one bank and runs the insight steps on its last day.
``branch`` copies it (Parquet files hard-linked: they are never written in place), gives the branch
its own holdout salt and its own chance in the simulator (``SimulatedBank.reseed``), plans and
dispatches the day, lets the bank live ``observe`` days (contacts' true effect recorded by the
simulator), measures outcomes and reviews them. ``true_uplift`` turns the recorded effects into the
true uplift of each strategy on the same entries and windows the review measured.

The bank and the branches are expensive (the bank ~25 s, a branch ~40 s of one core), so a test run builds
each once and every test (and every xdist worker) of that run shares them: ``shared_base`` and
``shared_branches`` keep them under the run's temporary root, one file lock per bank and per branch.
Two workers asking for the same 20 branches split them (each computes the branches no one else has taken,
then waits for the rest): the truth test's branches spread over both cores.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lifeloop.cli.demo import DEMO_CHANNELS
from lifeloop.context import Context

CONVERSION_DAYS = 30  # the simulator spreads a decided conversion evenly over the 30 days after the contact


def base_workspace(root: Path, customers: int, seed: int = 11, days: int = 400) -> tuple[Path, dt.date]:
    """A workspace with a simulated bank ingested and the insight steps run on its last day."""
    ctx = Context.init(root)
    (ctx.config_dir / "channels.yaml").write_text(DEMO_CHANNELS, encoding="utf-8")
    sim = ctx.simulate(root / "extracts", customers=customers, days=days, seed=seed)
    ctx.ingest(root / "extracts", as_of=sim.as_of)
    with ctx:
        ctx.run(sim.as_of, steps=["features", "lifecycle", "segments"])
    return root, sim.as_of


def run_dir(tmp_path_factory: Any) -> Path:
    """A folder shared by every xdist worker of this test run (its own base temp when not under xdist)."""
    base = Path(tmp_path_factory.getbasetemp())
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _locked(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """An exclusive lock on ``path`` (created): yields True once held, or False at once if ``wait`` is False
    and another process holds it."""
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def shared_base(tmp_path_factory: Any, customers: int) -> tuple[Path, dt.date]:
    """``base_workspace(customers)`` built once per test run, whoever asks first; read-only to its users
    (``branch`` copies it, Parquet hard-linked)."""
    root = run_dir(tmp_path_factory) / f"truth-bank-{customers}"
    done = root.with_name(root.name + ".json")
    with _locked(root.with_name(root.name + ".lock")):
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)
            _, as_of = base_workspace(root, customers)
            done.write_text(json.dumps({"as_of": as_of.isoformat()}), encoding="utf-8")
    return root, dt.date.fromisoformat(json.loads(done.read_text(encoding="utf-8"))["as_of"])


def shared_branches(folder: Path, seeds: Sequence[int], compute: Callable[[int], dict]) -> list[dict]:
    """``compute(seed)`` for every seed, each computed once per folder whoever asks (its result kept as JSON).

    First the seeds no other process is computing, then a wait for the others' (computed here after all
    if their process gave up). Under xdist two workers calling this with the same seeds split the work."""
    folder.mkdir(parents=True, exist_ok=True)

    def result(seed: int) -> Path:
        return folder / f"seed{seed}.json"

    def keep(seed: int) -> None:
        tmp = folder / f"seed{seed}.json.tmp"
        tmp.write_text(json.dumps(compute(seed), default=lambda o: o.item()), encoding="utf-8")
        tmp.replace(result(seed))

    for wait in (False, True):
        for seed in seeds:
            with _locked(folder / f"seed{seed}.lock", wait=wait) as mine:
                if mine and not result(seed).exists():
                    keep(seed)
    return [json.loads(result(seed).read_text(encoding="utf-8")) for seed in seeds]


def _link_parquet(src: str, dst: str) -> None:
    if src.endswith(".parquet"):
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


def branch(base: Path, dest: Path, seed: int, as_of: dt.date, observe: int, *, entry_days: int = 1,
           holdout: float | None = None, edit_lists: Any = None) -> dict[str, Any]:
    """Plan with salt ``seed`` for ``entry_days`` days, then live ``observe`` more days, and review (interim).

    ``holdout`` sets every strategy's control share (a larger control group makes tighter intervals)."""
    import re

    import pyarrow.parquet as pq

    from lifeloop.data.simulator import SimulatedBank
    from lifeloop.execution.closed_loop import run_loop

    shutil.copytree(base, dest, copy_function=_link_parquet)
    strategies = dest / "config" / "strategies.yaml"
    text = strategies.read_text(encoding="utf-8")
    text = text.replace("holdout_salt: lifeloop-2024", f"holdout_salt: truth-{seed}")
    if holdout is not None:
        text = re.sub(r"(?m)^(    holdout: )[0-9.]+", rf"\g<1>{holdout}", text)
    strategies.write_text(text, encoding="utf-8")
    SimulatedBank.open(dest / "extracts").reseed(10_000 + seed)
    ctx = Context(dest)
    with ctx:
        ctx.run(as_of, steps=["audiences", "plan"])
        if edit_lists is not None:
            edit_lists(ctx, as_of)
        ctx.run(as_of, steps=["dispatch"])
        days = run_loop(ctx, dest / "extracts", as_of, entry_days - 1, truth=True)
        days += run_loop(ctx, dest / "extracts", days[-1].bank_day if days else as_of, observe, steps=(), truth=True)
        last = days[-1].bank_day
        ctx.run(last, steps=["outcomes"])
        doc = ctx.evaluate(interim=True)
        outcomes = pq.read_table(ctx.lake.snapshot_dir("outcomes", last) / "outcomes.parquet")
    effects = [d.truth.append_column("as_of", pa.array([d.as_of] * d.truth.num_rows, pa.date32()))
               for d in days if d.truth is not None]
    return {"doc": doc, "outcomes": outcomes, "effects": pa.concat_tables(effects) if effects else None}


def true_uplift(outcomes: pa.Table, effects: pa.Table | None, money: bool = False) -> dict[str, float]:
    """Per strategy: mean true incremental conversions (or money) of treated entries minus control entries.

    Every contact the simulator saw for the entry's customer and offer counts (another strategy's too),
    weighted by the share of its 30 conversion days that falls inside the entry's observed window."""
    by_customer: dict[tuple[str, str], list[tuple[dt.date, float]]] = {}
    if effects is not None:
        value = "incremental_money" if money else "incremental_conversions"
        for c, o, d, v in zip(effects["customer_id"].to_pylist(), effects["offer"].to_pylist(),
                              effects["as_of"].to_pylist(), effects[value].to_pylist(), strict=False):
            if v:
                by_customer.setdefault((c, o), []).append((d, float(v)))
    sums: dict[str, dict[str, list[float]]] = {}
    for s, c, offer, entry, seen, arm in zip(*(outcomes[k].to_pylist() for k in (
            "strategy", "customer_id", "offer", "entry_date", "observed_through", "arm")), strict=False):
        total = 0.0
        for d, v in by_customer.get((c, offer), []):
            if d >= entry:
                total += v * min(max((seen - d).days, 0), CONVERSION_DAYS) / CONVERSION_DAYS
        sums.setdefault(s, {}).setdefault(arm, []).append(total)
    return {s: float(np.mean(a.get("treated", [0.0]))) - float(np.mean(a.get("control", [0.0])))
            for s, a in sums.items() if a.get("treated") and a.get("control")}


def comparison(doc: dict[str, Any], strategy: str, outcome: str) -> dict[str, Any] | None:
    """The treated-vs-control comparison of one outcome of one strategy in a review, if evaluated."""
    s = next((x for x in doc["strategies"] if x["strategy"] == strategy), None)
    if s is None or s["evaluation"] is None:
        return None
    o = next((x for x in s["evaluation"]["outcomes"] if x["name"] == outcome), None)
    return None if o is None else o["versus_control"][0]


# The review-vs-truth branches (tests/integration/test_review_against_truth*.py): issue 6's 20 branches of
# one 8,000-customer bank, every control share 50%, 3 days of entries, 15 more days lived.
TRUTH_SEEDS = range(1, 21)
TRUTH_CUSTOMERS = 8000
TRUTH_ENTRY_DAYS = 3
TRUTH_OBSERVE = 15
TRUTH_HOLDOUT = 0.5
INFLOW_OFFERS = ("REACTIVATE_GIFT", "BIRTHDAY_CARE")  # the simulator answers them with money in, not a product


def truth_branch(base: str, out: str, as_of: dt.date, seed: int) -> dict:
    """One truth branch: per strategy the review's interval and the truth it should cover (JSON-ready)."""
    r = branch(Path(base), Path(out) / f"seed{seed}", seed, as_of, TRUTH_OBSERVE, entry_days=TRUTH_ENTRY_DAYS,
               holdout=TRUTH_HOLDOUT)
    conversions = true_uplift(r["outcomes"], r["effects"])
    money = true_uplift(r["outcomes"], r["effects"], money=True)
    found = {}
    for s in r["doc"]["strategies"]:
        inflow = s["offer"] in INFLOW_OFFERS
        outcome = "inflow" if inflow else "purchased"
        c = comparison(r["doc"], s["strategy"], outcome)
        truth = (money if inflow else conversions).get(s["strategy"])
        if c is None or truth is None:
            continue
        found[s["strategy"]] = {"outcome": outcome, "truth": truth, "uplift": c["uplift"], "ci_low": c["ci_low"],
                                "ci_high": c["ci_high"], "significant": c["significant"],
                                "headline_significant": s["headline"]["significant"],
                                "treated": s["entries"]["treated"], "control": s["entries"]["control"]}
    return found


def truth_branches(tmp_path_factory: Any) -> list[dict]:
    """The 20 truth branches of this test run, shared by every test and worker that asks (``shared_branches``).

    Under xdist each asking worker computes in its own process (the two truth test files, scheduled first on
    the two workers by tests/conftest.py, split the branches); alone, two spawned processes split them."""
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial
    from multiprocessing import get_context

    base, as_of = shared_base(tmp_path_factory, TRUTH_CUSTOMERS)
    folder = run_dir(tmp_path_factory) / f"truth-branches-{TRUTH_CUSTOMERS}"
    compute = partial(truth_branch, str(base), str(folder / "workspaces"), as_of)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return shared_branches(folder, TRUTH_SEEDS, compute)
    here = str(Path(__file__).parent)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([here, old or ""])   # the spawned processes import this module
    try:
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            for done in [pool.submit(shared_branches, folder, TRUTH_SEEDS, compute) for _ in range(2)]:
                done.result()
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    return shared_branches(folder, TRUTH_SEEDS, compute)
