"""The one facade: the CLI, the API and notebooks all go through :class:`Context`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lifeloop import pipeline
from lifeloop.config.loader import ConfigFolder
from lifeloop.contract import Bank, StepResult
from lifeloop.data import ingest as ingesting
from lifeloop.data import simulator
from lifeloop.engine.adapters import connect
from lifeloop.errors import ConfigError, DataError
from lifeloop.execution import consent_changes, feedback_import, replies, worklists
from lifeloop.execution import dispatch as dispatching
from lifeloop.execution.bank_customers import BankCustomers
from lifeloop.insight import profile, summary, transitions
from lifeloop.models import registry as model_registry
from lifeloop.models import training as model_training
from lifeloop.models.contract import ModelsConfig
from lifeloop.review import from_file, kpis, lake_evaluation
from lifeloop.settings import ENGINES, Settings, operator_identity
from lifeloop.store import ops as ops_store
from lifeloop.store import rekey
from lifeloop.store.keys import Keys, open_keys
from lifeloop.store.lake import Lake, run_hint
from lifeloop.store.lake_crypto import LakeCrypto
from lifeloop.store.ops import approvals as approving
from lifeloop.store.ops import audit, delivery
from lifeloop.store.ops.database import resolve_url, unit_of_work
from lifeloop.store.ops.models import Dispatch
from lifeloop.store.ops.types import utcnow
from lifeloop.strategy import why as why_replay
from lifeloop.strategy.history import LakeHistory
from lifeloop.strategy.ops_history import OpsHistory
from lifeloop.workspace import init_workspace, load_workspace

if TYPE_CHECKING:
    import pyarrow as pa
    from pydantic import BaseModel
    from sqlalchemy.orm import Session, sessionmaker

    from lifeloop.config.loader import LocatedYaml
    from lifeloop.config.workspace import WorkspaceConfig
    from lifeloop.review.evaluation import Evaluation
    from lifeloop.store.lake import Lake

M = TypeVar("M", bound="BaseModel")


class Context:
    """A workspace opened for work: settings, configuration, the lake and an engine."""

    def __init__(self, workspace: str | Path | None = None, *, engine: str | None = None,
                 debug: bool | None = None, settings: Settings | None = None):
        self.settings = settings or Settings.from_env(workspace, engine, debug)
        self._engines: dict[str, Any] = {}
        self._configs: ConfigFolder | None = None
        self._ops: sessionmaker[Session] | None = None

    # ------------------------------------------------------------------ workspace
    @classmethod
    def init(cls, directory: str | Path, template: str = "bank", force: bool = False) -> Context:
        """Create a workspace from a template and open it."""

        init_workspace(directory, template, force)
        return cls(directory)

    @property
    def workspace(self) -> Path:
        return self.settings.workspace

    @cached_property
    def config(self) -> WorkspaceConfig:
        """The validated ``lifeloop.yaml``."""

        return load_workspace(self.workspace)

    @property
    def config_dir(self) -> Path:
        return self.workspace / self.config.config_dir

    @cached_property
    def lake(self) -> Lake:
        """The lake; C2 columns encrypted as lifeloop.yaml's ``lake.encryption`` says, decrypted with :attr:`keys`."""
        return Lake(self.workspace / self.config.lake.path,
                    LakeCrypto(lambda: self.keys, encrypt=self.config.lake.encryption))

    @cached_property
    def keys(self) -> Keys:
        """The workspace's keys (lifeloop.yaml ``keys:``): the bank's key manager, data keys, the keyed hash."""
        k = self.config.keys
        return open_keys(self.workspace, k.provider, k.path, k.keyring, dict(k.options))

    @property
    def configs(self) -> ConfigFolder:
        """The workspace's config files, each loaded once into its strict model (the steps' config port)."""
        if self._configs is None:
            self._configs = ConfigFolder(self.config_dir, self.workspace)
        return self._configs

    def load_config(self, name: str, model: type[M]) -> tuple[M, LocatedYaml]:
        """Load ``config/<name>.yaml`` into a strict model (cached for this context)."""
        return self.configs.load(name, model)

    def config_hash(self, *names: str) -> str:
        """A short hash of the named config files' bytes (stamped on every snapshot)."""
        return self.configs.hash(*names)

    @property
    def bank(self) -> Bank:
        """The bank's name and time zone (lifeloop.yaml) and the workspace folder."""
        return Bank(self.config.bank.name, self.config.bank.timezone, self.workspace)

    def ports(self) -> pipeline.Ports:
        """What the daily steps may reach: the lake, the configs, engines, history, the ops database."""
        return pipeline.Ports(lake=self.lake, configs=self.configs, engine=self.engine, bank=self.bank,
                              history=self.history_source, ops=self.ops, settings=self.config.run)

    # ------------------------------------------------------------------ engines
    @property
    def engine_name(self) -> str:
        return self.settings.engine or self.config.engine

    def engine(self, name: str | None = None):
        """The engine adapter (DuckDB by default, Spark on request), opened once per context."""

        name = name or self.engine_name
        if name not in ENGINES:
            raise ConfigError(f"unknown engine {name!r}", hint=f"choose one of: {', '.join(ENGINES)}")
        if name not in self._engines:

            self._engines[name] = connect(name, self)
        return self._engines[name]

    # ------------------------------------------------------------------ operations database
    @property
    def database_url(self) -> str:
        """The operations database: LIFELOOP_DATABASE_URL, else lifeloop.yaml's database_url, else ops.db here."""

        return resolve_url(self.workspace, setting=self.settings.database_url, configured=self.config.database_url)

    def ops(self) -> sessionmaker[Session]:
        """The operations database's session factory (SQLite is migrated on first use; PostgreSQL must be)."""
        if self._ops is None:

            self._ops = ops_store.open_ops(self.database_url, keys=lambda: self.keys)
        return self._ops

    def close(self) -> None:
        """Release engines (stops a local Spark session) and the operations database's connections."""
        for adapter in self._engines.values():
            adapter.close()
        self._engines.clear()
        if self._ops is not None:
            self._ops.kw["bind"].dispose()
            self._ops = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the loop
    def ingest(self, source: str | Path, mapping: str | Path | None = None, as_of: dt.date | None = None,
               progress: bool = False, *, today: dt.date | None = None):
        """Read a bank's extracts, map, validate, and publish them atomically as one batch.

        Without ``as_of`` the inferred date must not be after ``today`` (default: the real date) nor far
        after the previous batch.
        """

        return ingesting.ingest(self, Path(source), Path(mapping) if mapping else None, as_of, progress=progress,
                                today=today)

    def run(self, as_of: dt.date, steps: list[str] | None = None, engine: str | Any | None = None, *,
            replan_reason: str | None = None) -> list[StepResult]:
        """Run daily steps for one as-of date (re-planning a dispatched day needs a reason, which is audited)."""
        replan = pipeline.Replan(replan_reason, self.operator) if replan_reason else None
        return pipeline.run_steps(self.ports(), as_of, steps, engine, replan)

    @property
    def operator(self) -> str:
        """Who is acting: LIFELOOP_OPERATOR, else the OS user — interim, until principals land (data-protection
        issue)."""
        return operator_identity()

    # ------------------------------------------------------------------ keys
    def rotate_keys(self, reason: str | None = None) -> rekey.Rekeyed:
        """A new master-key version; data keys re-wrapped, encrypted bank batches rewritten under it; audited."""
        return rekey.rotate(self.keys, self.lake, self.ops(), actor=self.operator, reason=reason)

    def reencrypt(self, *, new_data_key: bool = False, reason: str | None = None) -> rekey.Rekeyed:
        """Operations rows under the newest data key, plaintext rows and batches encrypted; audited."""
        return rekey.reencrypt_all(self.keys, self.lake, self.ops(), actor=self.operator, new_data_key=new_data_key,
                                   reason=reason)

    # ------------------------------------------------------------------ the audit log
    def audit_verify(self) -> audit.Verification:
        """Walk the audit log's hash chain; the result names every edited, deleted, inserted or reordered entry."""
        with self.ops()() as session:
            return audit.verify(session)

    def audit_export(self, start: dt.date, end: dt.date, out: str | Path) -> audit.Export:
        """Export the audit entries of ``start``..``end`` (bank-local dates, inclusive) as CSV or JSONL; audited."""
        with unit_of_work(self.ops()) as session:
            return audit.export(session, start=self._local_midnight(start),
                                end=self._local_midnight(end + dt.timedelta(days=1)), out=Path(out),
                                actor=self.operator)

    def audit_prune(self, before: dt.date, archive: str | Path) -> audit.Pruned:
        """Delete audit entries written before ``before`` (past the retention) that ``archive`` holds; audited."""
        with unit_of_work(self.ops()) as session:
            return audit.prune(session, before=self._local_midnight(before), archive=Path(archive),
                               actor=self.operator, retention_months=self.config.audit.retention_months)

    def _local_midnight(self, day: dt.date) -> dt.datetime:
        from zoneinfo import ZoneInfo

        return dt.datetime.combine(day, dt.time(), ZoneInfo(self.config.bank.timezone)).astimezone(dt.UTC)

    def features(self, as_of: dt.date | None = None) -> pa.Table:
        """The published feature snapshot (标签) as of a date (default: the latest)."""
        return self.snapshot("features", as_of)

    def lifecycle(self, as_of: dt.date | None = None) -> pa.Table:
        """The published lifecycle snapshot (stage, rule, previous stage, days in stage) as of a date."""
        return self.snapshot("lifecycle", as_of)

    def segments(self, as_of: dt.date | None = None) -> pa.Table:
        """The published segments snapshot (tier, seg_<group>, micro_<name>) as of a date."""
        return self.snapshot("segments", as_of)

    def clusters(self, as_of: dt.date | None = None) -> pa.Table:
        """The published clusters snapshot (cluster_id, cluster_name, distance) as of a date."""
        return self.snapshot("clusters", as_of)

    def customer(self, customer_id: str, *, role: str = "analyst", rm_id: str | None = None,
                 reason: str | None = None, as_of: dt.date | None = None, transactions: int = 20) -> dict[str, Any]:
        """The customer profile (客户档案) as data, personal fields masked for ``role``."""

        return profile.customer_profile(self, customer_id, role_name=role, rm_id=rm_id, reason=reason, as_of=as_of,
                                transactions=transactions)

    def audiences(self, as_of: dt.date | None = None) -> pa.Table:
        """Eligible customers per strategy and wave, with the reason (定名单)."""
        return self.snapshot("audiences", as_of)

    def lists(self, as_of: dt.date | None = None) -> pa.Table:
        """The day's lists: treated, control and dropped candidates, with channel, script and dropping policy."""
        return self.snapshot("lists", as_of)

    def evaluate(self, strategies: Sequence[str] = (), *, as_of: dt.date | None = None,
                 interim: bool = False) -> dict[str, Any]:
        """Post-evaluation of the strategies from the lake's outcomes (策略后评估; lifeloop.review/1 JSON)."""

        return lake_evaluation.evaluate_lake(self, as_of, strategies, interim)

    def evaluate_file(self, path: str | Path, *, arm: str, control: str, outcomes: Sequence[str] = (),
                      money: Sequence[str] = (), pre: str | None = None, cost_per_contact: float | None = None,
                      holdout: float | None = None, min_per_arm: int | None = None,
                      encoding: str = "utf-8") -> Evaluation:
        """Evaluate a campaign run outside Lifeloop from a file, one row per customer (策略后评估)."""

        return from_file.evaluate_file(Path(path), arm=arm, control=control, outcomes=list(outcomes), money=list(money),
                             pre=pre, cost_per_contact=cost_per_contact, holdout=holdout,
                             min_per_arm=from_file.MIN_PER_ARM if min_per_arm is None else min_per_arm,
                             encoding=encoding)

    def dispatch(self, as_of: dt.date, *, drain: bool = True):
        """Put the day's lists in the outbox and send what is due through the configured channels (策略执行)."""

        return dispatching.dispatch(dispatching.Surroundings(self.lake, self.configs, self.ops, self.bank), as_of,
                                   drain_outbox=drain, operator=self.operator)

    def outbox_unknown(self, channel: str | None = None) -> list[delivery.UnknownItem]:
        """Contacts whose delivery is unknown (the provider does not de-duplicate), oldest first, with reason and
        age."""

        with self.ops()() as session:
            return delivery.unknown_items(session, now=utcnow(), channel=channel)

    def resolve_unknown(self, key: str, outcome: delivery.Resolution, reason: str, *, resend: bool = False) -> Dispatch:
        """Record an operator's decision on a contact of unknown outcome: sent, or not sent (audited)."""

        with unit_of_work(self.ops()) as session:
            return delivery.resolve(session, key=key, outcome=outcome, reason=reason, actor=self.operator,
                                    resend=resend)

    def worklist(self, rm_id: str, on: dt.date | None = None) -> list[dict[str, Any]]:
        """A relationship manager's open tasks, own customers only, most important first, with scripts."""

        return worklists.worklist(self.ops(), rm_id, lake=self.lake, on=on)

    def import_feedback(self, path: str | Path):
        """Import a feedback CSV (营销表单) all or nothing; re-importing the same file changes nothing."""

        return feedback_import.import_feedback(self.ops(), Path(path), timezone=self.config.bank.timezone)

    # ------------------------------------------------------------------ consent and approvals
    def _channels(self):
        return dispatching.channels_config(dispatching.Surroundings(self.lake, self.configs, self.ops, self.bank))

    def change_consent(self, customer_id: str, *, granted: bool, channel: str, purpose: str, source: str,
                       reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """Withdraw or grant consent at once (channel ``all``: every channel), audited in the operator's name."""
        return consent_changes.change(self.ops(), BankCustomers(self.lake), customer_id=customer_id, granted=granted,
                                      channel=channel, purpose=purpose, source=source, reason=reason,
                                      actor=self.operator, now=now)

    def consent(self, customer_id: str, at: dt.datetime | None = None) -> dict[str, Any]:
        """A customer's permissions per purpose and channel now, with why, and their consent history."""
        return consent_changes.show(self.ops(), BankCustomers(self.lake), customer_id, at=at)

    def import_consent(self, path: str | Path, now: dt.datetime | None = None):
        """Import a CSV of consent changes all or nothing; re-importing the same file changes nothing."""
        return consent_changes.import_changes(self.ops(), BankCustomers(self.lake), Path(path), actor=self.operator,
                                              timezone=self.config.bank.timezone, now=now)

    def record_replies(self, path: str | Path | None = None, *, body: bytes | str | dict[str, Any] | None = None,
                       now: dt.datetime | None = None) -> replies.Recorded:
        """Inbound replies from a file (or one webhook body): opt-outs applied at once, the rest kept for review."""
        timezone = self.config.bank.timezone
        items = ([replies.parse_webhook(body, timezone=timezone)] if body is not None
                 else replies.read_file(Path(path), timezone=timezone))
        return replies.record(self.ops(), BankCustomers(self.lake), items, actor=self.operator, now=now,
                              words=self._channels().replies.opt_out_words,
                              source="webhook" if body is not None else "file")

    def approval_requests(self, as_of: dt.date | None = None, *, pending_only: bool = True) -> list[dict[str, Any]]:
        """Requests for a second person's approval (pending ones by default), with how many items each day holds."""
        with unit_of_work(self.ops()) as session:
            held = approving.held_counts(session)
            return [{"id": a.id, "as_of": a.as_of, "kind": a.kind, "scope": a.scope, "contacts": a.contacts,
                     "threshold": a.threshold, "status": a.status, "requested_by": a.requested_by,
                     "requested_at": a.requested_at, "decided_by": a.decided_by, "reason": a.reason,
                     "held_that_day": held.get(a.as_of, 0), "text": approving.describe(a)}
                    for a in approving.requests(session, as_of=as_of, status="pending" if pending_only else None)]

    def decide_approval(self, as_of: dt.date, *, approve: bool, reason: str, strategy: str | None = None,
                        channel: str | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
        """Approve (release) or reject (cancel) a held day's send, as the operator — never the requester."""
        approvers = self._channels().approvals.approvers
        with unit_of_work(self.ops()) as session:
            done = approving.decide(session, as_of=as_of, approve=approve, by=self.operator, reason=reason,
                                    strategy=strategy, channel=channel, approvers=approvers, now=now)
            return {"approvals": [approving.describe(a) for a in done.approvals], "released": done.released,
                    "cancelled": done.cancelled}

    def history_source(self):
        """The plan's history: the operations database once anything was dispatched, else the lake's lists."""

        return OpsHistory(self.ops(), self.lake) if dispatching.has_dispatched(self.ops()) else LakeHistory(self.lake)

    def why(self, customer_id: str, as_of: dt.date) -> dict[str, Any]:
        """Every decision about a customer on a day (决策回放), replayed from that day's stored snapshots only."""

        return why_replay.explain(self, customer_id, as_of)

    def insight(self, as_of: dt.date | None = None) -> dict[str, Any]:
        """The insight summary as data (客户洞察): stages with changes, tiers and segments with AUM."""

        return summary.build(self, as_of)

    def transitions(self, before: dt.date, after: dt.date) -> dict[str, Any]:
        """Stage flows between two dates and the share of each stage moving on within 30/90 days."""

        return transitions.between(self.engine(), self.lake, before, after)

    def entry_cohorts(self, entered: str, reached: str, by: dt.date | None = None,
                      month: str | None = None) -> list[dict[str, Any]]:
        """Of the customers entering stage ``entered`` each month, how many reached ``reached`` by ``by``."""

        return transitions.cohorts(self.engine(), self.lake, entered, reached, by, month)

    def kpis(self, start: dt.date, end: dt.date) -> dict[str, Any]:
        """Lifecycle KPIs between two dates (stage mix, transitions, churn, activation, retention, sales)."""

        return kpis.compute(self.engine(), self.lake, start, end)

    def backfill(self, dates: Sequence[dt.date], steps: Sequence[str] = ("features", "lifecycle", "segments"),
                 engine: str | None = None) -> list[StepResult]:
        """Run the insight steps for a series of dates, oldest first, so that stage history exists."""

        results: list[StepResult] = []
        for d in sorted(set(dates)):
            wanted = [s for s in steps if not (s == "features" and self.lake.exists("features", d))]
            results.extend(self.run(d, wanted, engine))
        return results

    def snapshot(self, area: str, as_of: dt.date | None = None) -> pa.Table:
        """Read a published step snapshot as an Arrow table."""
        import pyarrow.parquet as pq


        dates = self.lake.dates(area)
        if not dates:
            raise DataError(f"no {area} snapshot has been published yet",
                            hint=run_hint(area))
        as_of = as_of or dates[-1]
        path = self.lake.snapshot_dir(area, as_of) / f"{area}.parquet"
        if not path.exists():
            raise DataError(f"no {area} snapshot as of {as_of}",
                            hint=f"published dates: {', '.join(d.isoformat() for d in dates[-5:])}")
        return pq.read_table(path)

    # ---------------------------------------------------------------- the model shelf (模型货架)
    def models_config(self) -> ModelsConfig:
        """config/models.yaml, or the built-in shelf (the churn warning) when the workspace has none."""
        return self.load_config("models", ModelsConfig)[0] if self.configs.exists("models") else ModelsConfig()

    def models(self) -> list[dict[str, Any]]:
        """Every declared or fitted model: its versions and its active version."""
        declared = [m.name for m in self.models_config().models]
        return [{"name": n, "declared": n in declared, "versions": model_registry.versions(self.lake, n),
                 "active": model_registry.champion(self.lake, n)}
                for n in sorted(set(declared) | set(model_registry.names(self.lake)))]

    def fit_model(self, name: str, as_of: dt.date) -> dict[str, Any]:
        """Fit a declared model as of D (validated out of time) and save it as its next version."""
        _, manifest = model_training.fit_and_save(self.lake, self.models_config().spec(name), as_of, self.operator)
        return manifest

    def model(self, name: str, version: str | None = None) -> dict[str, Any]:
        """A fitted version's manifest (default: the newest) with the model's history."""
        known = model_registry.versions(self.lake, name)
        if version is None and not known:
            raise DataError(f"model {name} has no fitted version", hint=f"fit it: `lifeloop models fit {name}`")
        manifest = model_registry.manifest(self.lake, name, version or known[-1])
        return {**manifest, "active": model_registry.champion(self.lake, name),
                "history": model_registry.history(self.lake, name)}

    def promote_model(self, name: str, version: str, reason: str) -> dict[str, Any]:
        """Make a fitted version the active one; kept in the model's history and on the audit log."""
        entry = model_registry.promote(self.lake, name, version, self.operator, reason)
        self._audit_model("model.promote", name, version, reason)
        return entry

    def retire_model(self, name: str, version: str, reason: str) -> dict[str, Any]:
        """Retire a fitted version for good; kept in the model's history and on the audit log."""
        entry = model_registry.retire(self.lake, name, version, self.operator, reason)
        self._audit_model("model.retire", name, version, reason)
        return entry

    def _audit_model(self, action: str, name: str, version: str, reason: str) -> None:
        with unit_of_work(self.ops()) as session:
            audit.record(session, actor=self.operator, action=action, target_type="model",
                                   target_id=f"{name}/{version}", reason=reason, details={})

    def simulate(self, out: str | Path, customers: int = 2000, days: int = 365, seed: int = 7,
                 start: dt.date | None = None, format: str = "parquet", truth: str | Path | None = None):
        """Write a synthetic bank's extracts (canonical CSV/Parquet) to ``out``."""

        return simulator.simulate(Path(out), customers=customers, days=days, seed=seed, start=start, format=format,
                        truth=truth)

