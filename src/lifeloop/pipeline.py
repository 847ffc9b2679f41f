"""The daily run: a static registry of typed steps and the one runner that executes them.

Read the flow here: :data:`STEPS` lists every step in the order of a full day, each one imported from
its own module, where its declaration (:class:`lifeloop.contract.Step`) says what it reads and writes.
:func:`run_steps` checks the request up front (dates, replans), then for each step resolves its
declared inputs, calls its pure ``compute``, publishes the output atomically with a manifest naming
every input snapshot and config hash read, and reports a :class:`lifeloop.contract.StepResult`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lifeloop import preflight
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.config.workspace import RunSettings
from lifeloop.contract import Bank, ConfigPort, HistoryPort, Inputs, Output, Read, Snapshot, Step, StepResult
from lifeloop.engine.adapters.base import Adapter, write_arrow
from lifeloop.errors import ConfigError, DataError, Interrupted
from lifeloop.execution import dispatch
from lifeloop.insight import clusters, features, lifecycle, segments
from lifeloop.models import scores
from lifeloop.realtime import entries as realtime_entries
from lifeloop.realtime import timers
from lifeloop.review import evidence, outcomes
from lifeloop.store.lake import BANK, Lake, run_hint
from lifeloop.store.ops import audit, config_changes, contacts, rights
from lifeloop.store.ops.database import unit_of_work
from lifeloop.strategy import audiences, plan

# the order of a full daily run
STEPS: dict[str, Step] = {s.name: s for s in (
    features.STEP, lifecycle.STEP, scores.STEP, segments.STEP, clusters.STEP,
    outcomes.STEP, evidence.STEP,
    audiences.STEP, plan.STEP,
    dispatch.STEP, timers.STEP,
)}

__all__ = ["STEPS", "Ports", "Replan", "StepResult", "resolve_steps", "run_steps"]


@dataclass
class Ports:
    """What the runner needs from the workspace: the lake, configs, engines, history, the ops database."""

    lake: Lake
    configs: ConfigPort
    engine: Callable[[str | None], Adapter]
    bank: Bank
    history: Callable[[], HistoryPort]
    ops: Callable[[], Any]
    settings: RunSettings = field(default_factory=RunSettings)
    operator: str | None = None      # the signed-in user running the steps (asks for approvals, audited)


@dataclass(frozen=True)
class Replan:
    """A deliberate re-plan of a day whose plan was already dispatched: who and why (audited)."""

    reason: str
    actor: str


def check_as_of(lake: Lake, as_of: dt.date, max_days: int) -> None:
    """Refuse a day before every bank batch, or too long after the newest one on or before it."""
    batches = lake.dates(BANK)
    if not batches:
        raise DataError("no bank batch has been ingested: there is nothing to run on",
                        hint="ingest the bank's extracts first: `lifeloop ingest FOLDER`")
    if as_of < batches[0]:
        raise DataError(f"{as_of} is before every bank batch: there was no data yet",
                        hint="published batches: " + ", ".join(d.isoformat() for d in batches[-10:]))
    newest = max(d for d in batches if d <= as_of)
    if (as_of - newest).days > max_days:
        raise DataError(f"{as_of} is {(as_of - newest).days} days after the newest bank batch ({newest}); stages "
                        f"and plans would describe customers from stale data (at most {max_days} days)",
                        hint="ingest the bank's newer extracts first, or raise run.max_days_after_batch in "
                             "lifeloop.yaml if the gap is intended")


def check_replan(ports: Ports, as_of: dt.date, names: Sequence[str], replan: Replan | None) -> int:
    """A dispatched day is re-planned only on purpose (``--replan --reason``), and the re-plan is audited."""
    if "plan" not in names:
        return 0
    with unit_of_work(ports.ops()) as session:
        sent = contacts.dispatched_on(session, as_of)
        if sent and replan is None:
            raise DataError(f"the plan of {as_of} was already dispatched ({sent:,} contacts in the outbox): "
                            "re-planning would replace the lists those contacts came from",
                            hint="re-plan on purpose with `--replan --reason TEXT` (audited); contacts that went "
                                 "out are never recalled or sent twice")
        if sent and replan is not None:
            audit.record(session, actor=replan.actor, action="plan.replan", target_type="day",
                         target_id=as_of.isoformat(), reason=replan.reason,
                         details={"dispatched": sent, "steps": list(names)})
    return sent


def publish_realtime_entries(ports: Ports, as_of: dt.date) -> int | None:
    """Publish the real-time strategies' treated and control entries before D from the operations database as
    ``lake/moment_entries`` (:mod:`lifeloop.realtime.entries`), which the outcomes step declares it reads."""
    config = ports.configs.load("strategies", StrategiesConfig)[0] if ports.configs.exists("strategies") else None
    return realtime_entries.publish(ports.lake, ports.ops(), config, as_of)


# areas of derived tags (标签): a customer who asked for their tags to be deleted is left out of them
DERIVED_AREAS = ("features", "lifecycle", "segments", "clusters", "scores")


def tags_deleted(ports: Ports, names: Sequence[str]) -> frozenset[str]:
    """Customers whose derived tags must not be produced (a tag-deletion request), when the run writes any."""
    if not any(STEPS[n].writes in DERIVED_AREAS for n in names):
        return frozenset()
    with ports.ops()() as session:
        return frozenset(rights.tags_deleted(session))


def without_customers(out: Output, excluded: frozenset[str]) -> Output:
    """The output with the excluded customers' rows removed from every table keyed by customer (and counted)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not excluded:
        return out
    value_set = pa.array(sorted(excluded), pa.string())
    tables, removed = [], 0
    for t in out.tables:
        if "customer_id" in t.table.column_names:
            kept = t.table.filter(pc.invert(pc.is_in(t.table["customer_id"], value_set=value_set)))
            removed += t.table.num_rows - kept.num_rows
            t = replace(t, table=kept)
        tables.append(t)
    return replace(out, tables=tables, manifest={**out.manifest, "tags_deleted_rows": removed})


def record_config_live(ports: Ports, as_of: dt.date, names: Sequence[str]) -> dict[str, str]:
    """Audit config files this run uses whose bytes differ from the live ones (``config.live``)."""
    used = sorted({c for n in names for c in STEPS[n].configs if ports.configs.exists(c)})
    if not used:
        return {}
    files = {ports.configs.path(c).name: ports.configs.hash(c) for c in used}
    with unit_of_work(ports.ops()) as session:
        return config_changes.record_if_changed(session, files=files, actor=ports.operator or "lifeloop",
                                                run=f"{as_of.isoformat()} {','.join(names)}")


def resolve_steps(steps: Sequence[str] | None) -> list[str]:
    """Validate step names (did-you-mean) and put them in run order."""
    if not steps:
        return list(STEPS)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], STEPS, n=1)
        raise ConfigError(f"unknown step {unknown[0]!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                          hint=f"steps are: {', '.join(STEPS)}")
    return [s for s in STEPS if s in steps]


def resolve_read(lake: Lake, read: Read, as_of: dt.date, step: str) -> Snapshot | None:
    """The snapshot a declared read names for D (None for an optional one that does not exist)."""
    if read.when == "on":
        day: dt.date | None = as_of if lake.exists(read.area, as_of) else None
    elif read.when == "before":
        day = lake.previous_date(read.area, as_of)
    else:
        day = lake.latest_date(read.area, as_of)
    if day is None:
        if read.optional or read.when == "before":
            return None
        raise DataError(f"no {read.area} snapshot as of {as_of}: the {step} step reads it",
                        hint=run_hint(read.area, as_of))
    return Snapshot(read.area, day, lake.manifest(read.area, day).get("run_id"), lake.snapshot_file(read.area, day))


def gather(step: Step, ports: Ports, as_of: dt.date, adapter: Adapter) -> tuple[Inputs, dict[str, Any]]:
    """Load what a step declared; return its inputs and the manifest's record of them."""
    snapshots = {r.area: resolve_read(ports.lake, r, as_of, step.name) for r in step.reads}
    configs = {name: ports.configs.load(name, model) for name, model in step.configs.items()
               if ports.configs.exists(name)}
    read: dict[str, Any] = {a: {"as_of": s.as_of.isoformat(), "run_id": s.run_id}
                            for a, s in sorted(snapshots.items()) if s is not None}
    bank_files: dict[str, list[Path]] = {}
    if step.bank:
        bank_files = adapter.register_bank(ports.lake, as_of)
        batches = sorted({p.parent.name[len("as_of="):] for paths in bank_files.values() for p in paths})
        read[BANK] = {b: ports.lake.manifest(BANK, dt.date.fromisoformat(b)).get("run_id") for b in batches}
    inputs = Inputs(as_of=as_of, engine=adapter, snapshots=snapshots, configs=configs, bank=ports.bank,
                    lake=ports.lake, bank_files=bank_files, history=ports.history() if step.history else None,
                    ops=ports.ops if step.ops else None, config_source=ports.configs, settings=ports.settings,
                    operator=ports.operator)
    return inputs, read


def publish(step: Step, ports: Ports, as_of: dt.date, out: Output, read: dict[str, Any],
            engine: str) -> str:
    """Write a step's output atomically under lake/<area>/as_of=D/ with its manifest; return the run id."""
    assert step.writes is not None

    def write(staging: Path) -> dict[str, Any]:
        for t in out.tables:
            write_arrow(t.table, staging / f"{t.name}.parquet", t.order_by, t.schema)
        for name, data in out.files.items():
            (staging / name).write_bytes(data)
        return {}

    names = sorted(step.configs)
    manifest = {
        "step": step.name, "rows": out.row_count(), "inputs": read,
        "configs": {n: ports.configs.hash(n) for n in names},
        "config_hash": ports.configs.hash(*names) if names else None,
        **({"engine": engine} if step.bank else {}),
        **out.manifest,
        **({"warnings": out.warnings} if out.warnings else {}),
    }
    published = ports.lake.publish(step.writes, as_of, write, manifest=manifest)
    for name, data in out.state.items():
        ports.lake.save_state(step.writes, name, data)
    return published["run_id"]


def run_step(step: Step, ports: Ports, as_of: dt.date, adapter: Adapter,
             excluded: frozenset[str] = frozenset()) -> StepResult:
    """Gather, compute, publish one step; Ctrl-C inside it publishes nothing and says so.

    A step that writes derived tags leaves out the ``excluded`` customers (tag-deletion requests)."""
    started = time.perf_counter()
    try:
        inputs, read = gather(step, ports, as_of, adapter)
        out = step.compute(inputs)
        if step.writes in DERIVED_AREAS:
            out = without_customers(out, excluded)
        if step.writes:
            run_id = publish(step, ports, as_of, out, read, adapter.name)
        else:
            run_id = out.manifest.get("run_id") or f"{step.name}-{as_of.isoformat()}"
    except (KeyboardInterrupt, Interrupted) as exc:
        action = "nothing of it was published" if step.writes else "what it had not sent stays in the outbox"
        raise Interrupted(f"the {step.name} step for {as_of} was stopped by Ctrl-C: {action}") from exc
    return StepResult(step.name, as_of, out.row_count(), run_id, round(time.perf_counter() - started, 3),
                      out.summary, out.warnings)


def run_steps(ports: Ports, as_of: dt.date, steps: Sequence[str] | None = None,
              engine: str | Adapter | None = None, replan: Replan | None = None) -> list[StepResult]:
    """Run the named steps (default: all) for one as-of date, in order (on a named engine, or an adapter).

    Checked before any step runs: the configuration (every file, every problem at once), the date against
    the bank's batches, and a re-plan of a day already dispatched."""
    names = resolve_steps(steps)
    # every file and rule against the catalogue and the data model; offers against the bank's own product
    # catalogue are checked by the audiences step (a run of the insight steps does not depend on them)
    checked = ports.configs.hash(*preflight.FILES)
    if ports.configs.checked != checked:  # once per version of the files (a closed loop runs many days)
        preflight.check_workspace(ports.configs.folder).raise_for_errors()
        ports.configs.checked = checked
    if any(STEPS[n].bank for n in names):
        check_as_of(ports.lake, as_of, ports.settings.max_days_after_batch)
    check_replan(ports, as_of, names, replan)
    record_config_live(ports, as_of, names)
    excluded = tags_deleted(ports, names)
    if "outcomes" in names:   # the review's step is pure: the decider's real-time entries reach it as lake rows
        publish_realtime_entries(ports, as_of)
    adapter = engine if isinstance(engine, Adapter) else ports.engine(engine)
    return [run_step(STEPS[name], ports, as_of, adapter, excluded) for name in names]
