"""Check a workspace's configuration up front: every file, every rule, every problem at once.

``lifeloop check`` runs this, and so does the start of every ``lifeloop run`` (before any step), so a
typo in ``strategies.yaml`` is found in a second instead of after five steps have re-run. Nothing is
computed and no snapshot is needed: the columns each rule may use come from the configuration itself —

* features: the compiled tag catalogue (``config/tags.yaml``), typed as the features step writes them;
* stage history: ``previous_stage`` and ``days_in_stage`` (``config/lifecycle.py``);
* segments: ``seg_<group>`` and ``micro_<name>`` of ``config/segments.yaml``, as the segments step writes them;
* audiences: all of the above plus the stage and the day's events (``strategy.audiences.audience_columns``).

Offers are checked against the bank's product catalogue only when a lake with a bank batch is given.
Each problem names file, line and field and says what to do; warnings (a rule that can never fire) are
kept apart from errors. A file that cannot be read hides only the checks that need it.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from lifeloop.config.channels import ChannelsConfig
from lifeloop.config.clusters import ClustersConfig
from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.events import EventsConfig
from lifeloop.config.lifecycle import HISTORY_COLUMNS, LifecycleConfig
from lifeloop.config.loader import LocatedYaml, load_yaml, validate_model
from lifeloop.config.masking import MaskingConfig
from lifeloop.config.segments import SegmentsConfig
from lifeloop.config.shelf import ModelsConfig
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.config.tags import TagsConfig
from lifeloop.config.types import LENIENT_NAMES
from lifeloop.data.masking import DEFAULT_POLICY, Policy
from lifeloop.engine.compile import feature_columns
from lifeloop.errors import ConfigError, LifeloopError, Problem
from lifeloop.insight.catalogue import Catalogue, resolve_catalogue
from lifeloop.insight.features import feature_schema
from lifeloop.insight.lifecycle import check_stages
from lifeloop.insight.segments import check_segments
from lifeloop.insight.segments import output_schema as segments_schema
from lifeloop.store.lake import Lake
from lifeloop.strategy.audiences import audience_columns
from lifeloop.strategy.checks import check_audiences, check_references, check_structure

M = TypeVar("M", bound=BaseModel)

# every file of config/, in the order the daily run reads them; channels.yaml may be absent (dispatch
# then uses the offline defaults), every other file is needed by a step of the daily run
FILES: dict[str, type[BaseModel]] = {
    "tags": TagsConfig, "lifecycle": LifecycleConfig, "segments": SegmentsConfig, "clusters": ClustersConfig,
    "models": ModelsConfig, "strategies": StrategiesConfig, "contact_policy": ContactPolicy,
    "channels": ChannelsConfig, "masking": MaskingConfig, "events": EventsConfig,
}
OPTIONAL = {"channels", "models", "masking", "events"}   # no models.yaml: the built-in churn warning
DOCS = {"tags": "docs/features.md", "lifecycle": "docs/insight.md", "segments": "docs/insight.md",
        "clusters": "docs/insight.md", "models": "docs/models.md", "strategies": "docs/strategies.md",
        "contact_policy": "docs/strategies.md", "channels": "docs/execution.md", "masking": "docs/configuration.md",
        "events": "docs/realtime.md"}
NUMERIC = ("INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "BOOLEAN")


@dataclass
class CheckReport:
    """What ``check_workspace`` found: errors (a run would fail), warnings (it would run, but look), files read."""

    files: list[str] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise one ConfigError listing every error (nothing to do when there is none)."""
        if self.errors:
            raise ConfigError(f"{len(self.errors)} problem(s) in the configuration", problems=list(self.errors),
                              hint="fix every problem listed (each names its file, line and field); "
                                   "`lifeloop check` lists them again with a fix for each")


class _Checker:
    """Collects problems while the files are checked one after the other."""

    def __init__(self, config_dir: Path):
        self.dir = config_dir
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.files: list[str] = []
        self.raw: dict[str, Any] = {}     # the plain data of every file that parsed as YAML

    def display(self, name: str) -> str:
        return f"{self.dir.name}/{name}.yaml"

    def failed(self, exc: LifeloopError, file: str) -> None:
        """Every problem of an error (or the error itself), each with a fix."""
        found = exc.problems or [Problem(exc.message.removeprefix(f"{file}: "), file=file)]
        self.errors.extend(replace(p, hint=p.hint or exc.hint) for p in found)

    def load(self, name: str) -> tuple[Any, LocatedYaml] | None:
        """A file validated against its model, or None (its problems recorded) when it cannot be used."""
        path, file = self.dir / f"{name}.yaml", self.display(name)
        if not path.exists():
            if name not in OPTIONAL:
                self.errors.append(Problem("file not found", file=file,
                                           hint=f"restore it, e.g. from the template: lifeloop init --force "
                                                f"(rewrites {file} and the other template files)"))
            return None
        self.files.append(file)
        doc = None
        try:
            doc = load_yaml(path)
            doc.file = file  # errors name the file as the workspace shows it (config/strategies.yaml)
            self.raw[name] = doc.data
            return validate_model(FILES[name], doc), doc
        except ConfigError as exc:
            exc.hint = f"correct this field; {DOCS[name]} describes {file}"
            if doc is None:  # the YAML reader names the file by its full path: name it as the workspace shows it
                exc.problems = [replace(p, file=file) if p.file == str(path) else p for p in exc.problems]
            self.failed(exc, file)
        if doc is None:  # not even YAML (a duplicate key, a tab): nothing of it can be cross-checked
            return None
        return (salvaged, doc) if (salvaged := _salvage(name, doc.data)) is not None else None


def check_workspace(config_dir: Path, *, lake: Lake | None = None, as_of: dt.date | None = None) -> CheckReport:
    """Check every config file and every rule of a workspace at once; report every problem, run nothing."""
    c = _Checker(Path(config_dir))
    products = _products(lake, as_of)
    as_of = as_of or dt.date.today()  # rules expand their date macros for a day; the check does not depend on it
    loaded = {name: c.load(name) for name in FILES}

    features = _features(c, loaded["tags"])
    shelf = loaded["models"][0] if loaded.get("models") else ModelsConfig()
    models = {m.name: m.kind for m in shelf.models}    # what score('name') may read in tiers, groups, audiences
    stages = segment_names = segment_columns = None
    if loaded["lifecycle"]:
        config, doc = loaded["lifecycle"]
        stages = {s.name for s in config.stages}
        _add(c, check_stages(config, features, as_of, doc))
    if loaded["segments"]:
        config, doc = loaded["segments"]
        segment_names = {t.name for t in config.tiers} | {g.name for g in config.groups} \
            | {m.name for m in config.micro_segments}
        segment_columns = feature_columns(segments_schema(config))
        _add(c, check_segments(config, features, as_of, doc, models=models))
    elif c.raw.get("segments") is not None:
        # a segments.yaml with a schema error still names its groups: audiences are checked against those
        segment_columns = _segment_columns(c.raw["segments"])
    if loaded["clusters"] and features is not None:
        _check_clusters(c, *loaded["clusters"], features)
    if loaded["strategies"]:
        config, doc = loaded["strategies"]
        policy = loaded["contact_policy"][0] if loaded.get("contact_policy") else None
        try:
            check_structure(config, doc, policy)
        except ConfigError as exc:
            c.failed(exc, doc.file)
        try:
            check_references(config, doc, products=products, stages=stages, segments=segment_names)
        except ConfigError as exc:
            c.failed(exc, doc.file)
        if features is not None and segment_columns is not None:
            _add(c, check_audiences(config, audience_columns(features, segment_columns), as_of, doc, models=models))
    if loaded.get("channels"):
        _check_replay(c, *loaded["channels"])
        policy = loaded["masking"][0].policy(c.display("masking")) if loaded.get("masking") else DEFAULT_POLICY
        _check_recipients(c, *loaded["channels"], policy)
    if loaded.get("events") and loaded["strategies"]:
        _check_moments(c, *loaded["events"], *loaded["strategies"])
    order = {c.display(name): i for i, name in enumerate(FILES)}

    def key(p: Problem) -> tuple[int, int]:
        return order.get(p.file or "", len(order)), p.line or 0

    # one problem found by two checks (or twice by one) is reported once
    return CheckReport(files=c.files, errors=sorted(dict.fromkeys(c.errors), key=key),
                       warnings=sorted(dict.fromkeys(c.warnings), key=key))


def _check_replay(c: _Checker, config: ChannelsConfig, doc: LocatedYaml) -> None:
    """``replay_at`` with a channel that reaches real customers is a warning: the gate would judge by a replayed
    clock."""
    live = sorted(name for name, s in config.channels.items() if s.kind == "webhook")
    if config.replay_at and live:
        c.warnings.append(Problem(
            f"replay_at {config.replay_at!r} dispatches every day as if it were that time on the day, yet "
            f"{', '.join(live)} {'goes' if len(live) == 1 else 'go'} to a live gateway: quiet hours and validity "
            "would be judged by the replayed clock, not the real one", file=doc.file,
            line=doc.line_of(("replay_at",)), field="replay_at",
            hint="remove replay_at from a live workspace (it is for replays and the simulated bank)"))


def _check_recipients(c: _Checker, config: ChannelsConfig, doc: LocatedYaml, policy: Policy) -> None:
    """A file export is never unmasked by configuration: a recipient role that sees more only on request (with a
    reason, e.g. admin, compliance) is refused, under the workspace's masking policy."""
    for name, s in config.channels.items():
        if s.kind != "file" or s.recipient_role not in policy.roles:
            continue  # an unknown role is already reported by the channels model
        if policy.role(s.recipient_role).needs_reason:
            c.errors.append(Problem(
                f"channel {name}: recipient_role {s.recipient_role!r} sees personal data unmasked only on request, "
                "with a reason; a file export is never unmasked by configuration", file=doc.file,
                line=doc.line_of(("channels", name, "recipient_role")), field=f"channels.{name}.recipient_role",
                hint="export for a role that sees the data masked (analyst), or for the customers' own RMs (rm)"))
def _check_moments(c: _Checker, events: EventsConfig, events_doc: LocatedYaml, strategies: StrategiesConfig,
                   doc: LocatedYaml) -> None:
    """Real-time links: an event strategy whose scene no moment declares, a moment no strategy reacts to."""
    scenes = {m.id for m in events.moments} | {m.scene for m in events.moments if m.scene}
    used = set()
    for i, s in enumerate(strategies.strategies):
        if s.scenario.kind != "event":
            continue
        used.add(s.scenario.name)
        if s.scenario.name not in scenes:
            close = difflib.get_close_matches(s.scenario.name, sorted(scenes), n=1)
            c.warnings.append(Problem(
                f"strategy {s.id}: scene {s.scenario.name!r} is no moment of {c.display('events')}: it reacts in the "
                "daily batch only, never in real time", file=doc.file,
                line=doc.line_of(("strategies", i, "scenario", "name")), field="scenario.name",
                hint=f"did you mean {close[0]!r}?" if close else
                "declare the moment in events.yaml (moments: [{id: ..., kind: ..., scene: <this name>}])"))
    for j, m in enumerate(events.moments):
        if m.enabled and m.id not in used and (m.scene or m.id) not in used:
            c.warnings.append(Problem(f"moment {m.id}: no strategy reacts to it (scenario kind event, name "
                                      f"{m.scene or m.id!r}); it is recorded but decides nothing",
                                      file=events_doc.file, line=events_doc.line_of(("moments", j, "id")), field="id",
                                      hint="add a strategy with that scene, or set enabled: false"))


def _salvage(name: str, data: Any) -> BaseModel | None:
    """What of a file that failed its schema can still be cross-checked (its schema errors are already reported).

    Badly spelt names and ids block nothing else, so they are accepted here; a strategy with a schema error
    is left out (strategies are independent of each other), so the others' audiences are still checked.
    """
    model = FILES[name]
    try:
        return model.model_validate(data, context={LENIENT_NAMES: True})
    except PydanticValidationError as exc:
        if name != "strategies" or not isinstance(data, dict) or not isinstance(data.get("strategies"), list):
            return None
        bad = {e["loc"][1] for e in exc.errors() if len(e["loc"]) > 1 and e["loc"][0] == "strategies"}
    kept = {**data, "strategies": [s for i, s in enumerate(data["strategies"]) if i not in bad]}
    try:
        return model.model_validate(kept, context={LENIENT_NAMES: True})
    except PydanticValidationError:
        return None


def _add(c: _Checker, found: tuple[list[Problem], list[Problem]]) -> None:
    c.errors.extend(found[0])
    c.warnings.extend(found[1])


def _features(c: _Checker, loaded: tuple[TagsConfig, LocatedYaml] | None) -> dict[str, str] | None:
    """Feature name -> type as the features step publishes them (None when tags.yaml is broken)."""
    if loaded is None:
        return None
    config, doc = loaded
    try:
        catalogue: Catalogue = resolve_catalogue(config, doc)
    except ConfigError as exc:
        c.failed(exc, doc.file)
        return None
    columns = feature_columns(feature_schema(catalogue))
    for name in sorted(set(columns) & set(HISTORY_COLUMNS)):
        tag = catalogue.by_name[name]
        c.errors.append(Problem(f"the tag {name!r} has the name of a stage-history column", file=doc.file,
                                line=tag.line, rule=name, field="name",
                                hint="rename the tag; lifecycle rules get this column from the stage history"))
    return columns


def _segment_columns(data: Any) -> dict[str, str]:
    """The segment columns a segments.yaml that failed its schema would still give (its named groups)."""
    names = {"groups": "seg_", "micro_segments": "micro_"}
    found = {f"{prefix}{item['name']}": "BOOLEAN" for key, prefix in names.items()
             for item in (data.get(key) or [] if isinstance(data, dict) else [])
             if isinstance(item, dict) and isinstance(item.get("name"), str)}
    return {"tier": "VARCHAR", "aum": "DECIMAL(18,2)", **found, "micro_segment": "VARCHAR"}


def _check_clusters(c: _Checker, config: ClustersConfig, doc: LocatedYaml, features: Mapping[str, str]) -> None:
    """Clustering reads numeric feature columns only."""
    for i, f in enumerate(config.features):
        at = dict(file=doc.file, line=doc.line_of(("features", i, "name")), field=f"features[{i}].name")
        typ = features.get(f.name)
        if typ is None:
            close = difflib.get_close_matches(f.name, list(features), n=1)
            c.errors.append(Problem(f"{f.name!r} is not a feature column"
                                    + (f"; did you mean {close[0]!r}?" if close else ""),
                                    hint="name a tag of config/tags.yaml", **at))  # type: ignore[arg-type]
        elif not typ.startswith(NUMERIC):
            c.errors.append(Problem(f"the feature {f.name!r} is {typ}; clustering needs numbers",
                                    hint="choose a numeric tag (counts, amounts, days)",
                                    **at))  # type: ignore[arg-type]


def _products(lake: Lake | None, as_of: dt.date | None) -> set[str] | None:
    """Product ids of the bank's newest batch (on or before ``as_of``, if given); None without a lake or a batch."""
    if lake is None:
        return None
    dates = [d for d in lake.dates("bank") if as_of is None or d <= as_of]
    files = lake.bank_files(dates[-1]).get("products") if dates else None
    if not files:
        return None
    import pyarrow.parquet as pq

    return set(pq.read_table(files[-1], columns=["product_id"])["product_id"].to_pylist()) or None
