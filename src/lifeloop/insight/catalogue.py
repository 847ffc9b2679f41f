"""Resolve ``config/tags.yaml`` into a checked catalogue: windows expanded, strings parsed, order fixed.

Every user string goes through :func:`lifeloop.engine.rules.parse_expression` (aggregates, where
rules, expressions), so what reaches an engine later is a tree, never the user's text. Errors name
the file, the line and the tag.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from lifeloop.config.loader import LocatedYaml, load_yaml, validate_model
from lifeloop.config.tags import TagsConfig, TagSpec, valid_tag_name
from lifeloop.data.schema import TABLES
from lifeloop.engine.rules import parse_expression
from lifeloop.engine.views import SOURCES
from lifeloop.errors import ConfigError, Problem

CUSTOMER_COLUMNS: dict[str, str] = {c.name: c.type for c in TABLES["customers"].columns}


@dataclass(frozen=True)
class Tag:
    """One resolved tag (one column of the feature table)."""

    name: str
    type: str
    label_zh: str
    label_en: str
    description: str
    category: str
    line: int | None
    kind: str                              # "aggregate" or "expression"
    tree: exp.Expression                   # the parsed aggregate or expression
    sql_type: str                          # DuckDB type of ``tree`` (dry run)
    source: str | None = None
    window: int | None = None
    offset_days: int = 0
    where: exp.Expression | None = None
    default: Any = None
    depends_on: tuple[str, ...] = ()
    money: bool | None = None              # declared an amount of money (None: inferred, insight/money.py)


@dataclass(frozen=True)
class Catalogue:
    """The checked catalogue: aggregate tags, then expression tags layer by layer."""

    tags: tuple[Tag, ...]
    layers: tuple[tuple[str, ...], ...]    # expression tags, each layer only using earlier ones
    file: str = "config/tags.yaml"
    by_name: dict[str, Tag] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_name.update({t.name: t for t in self.tags})

    @property
    def names(self) -> list[str]:
        """Tag names in output order (as declared in the file)."""
        return [t.name for t in self.tags]


def load_catalogue(path: str | Path, display: str | None = None, *, text: str | None = None) -> Catalogue:
    """Load and resolve a tags file; ``display`` is the file name errors show (e.g. config/tags.yaml)."""
    doc = load_yaml(path, text=text)
    if display:
        doc.file = display
    return resolve_catalogue(validate_model(TagsConfig, doc), doc)


def _error(doc: LocatedYaml, line: int | None, tag: str, message: str, hint: str) -> ConfigError:
    where = f"{doc.file}:{line}" if line else doc.file
    return ConfigError(f"{where} tag {tag}: {message}", hint=hint,
                       problems=[Problem(message, file=doc.file, line=line, rule=tag)])


def resolve_catalogue(config: TagsConfig, doc: LocatedYaml) -> Catalogue:
    """Check cross-references and parse every expression; return tags in a computable order."""
    declared: dict[str, tuple[int, TagSpec, int | None]] = {}
    for i, spec in enumerate(config.tags):
        for name, window in spec.names():
            line = doc.line_of(("tags", i, "name"))
            if not valid_tag_name(name):
                raise _error(doc, line, name, "a tag name must be lower-case letters, digits and _",
                             "rename it, e.g. txn_count_30d")
            if name in declared:
                first = doc.line_of(("tags", declared[name][0], "name"))
                raise _error(doc, line, name, f"the name is already used by the tag on line {first}",
                             "give each tag its own name")
            if name in CUSTOMER_COLUMNS:
                raise _error(doc, line, name, "the name is a customer column; expression tags can use it as is",
                             f"rename the tag, e.g. {name}_tag")
            declared[name] = (i, spec, window)
    tag_types = {name: spec.type for name, (_, spec, _) in declared.items()}

    tags: list[Tag] = []
    for name, (i, spec, window) in declared.items():
        line = doc.line_of(("tags", i, "name"))
        if spec.expression is not None:
            tags.append(_expression_tag(doc, i, name, spec, tag_types))
        else:
            tags.append(_aggregate_tag(doc, i, name, spec, window))
        _check_type(doc, line, tags[-1])
    layers = _layers(doc, tags)
    return Catalogue(tuple(tags), layers, doc.file)


def _common(spec: TagSpec, name: str, window: int | None) -> dict[str, Any]:
    fill = {"{window}": str(window)} if window is not None else {}

    def sub(text: str) -> str:
        for k, v in fill.items():
            text = text.replace(k, v)
        return text

    return dict(name=name, type=spec.type, label_zh=sub(spec.label.zh), label_en=sub(spec.label.en),
                description=sub(spec.description), category=spec.category, default=spec.default,
                money=spec.money)


def _aggregate_tag(doc: LocatedYaml, i: int, name: str, spec: TagSpec, window: int | None) -> Tag:
    line = doc.line_of(("tags", i, "name"))
    assert spec.source is not None and spec.aggregate is not None
    source = SOURCES.get(spec.source)
    if source is None:
        close = difflib.get_close_matches(spec.source, SOURCES, n=1)
        raise _error(doc, doc.line_of(("tags", i, "source")), name, f"unknown source {spec.source!r}",
                     (f"did you mean {close[0]!r}? " if close else "") + f"sources are: {', '.join(SOURCES)}")
    if window is not None and source.date_column is None:
        raise _error(doc, doc.line_of(("tags", i, "windows")), name,
                     f"the source {source.name} is a snapshot, so it has no day windows",
                     "use as_of_offset_days to read it as of an earlier date, or drop windows")
    if spec.as_of_offset_days is not None and not source.snapshot:
        raise _error(doc, doc.line_of(("tags", i, "as_of_offset_days")), name,
                     f"as_of_offset_days applies to snapshot sources (holdings), not to {source.name}",
                     "use windows for dated rows")
    tree = parse_expression(spec.aggregate, columns=source.columns, kind="aggregate",
                            where=f"{doc.file}:{doc.line_of(('tags', i, 'aggregate'))} tag {name}")
    where = None
    if spec.where is not None:
        where = parse_expression(spec.where, columns=source.columns, kind="boolean",
                                 where=f"{doc.file}:{doc.line_of(('tags', i, 'where'))} tag {name}")
    return Tag(**_common(spec, name, window), line=line, kind="aggregate", tree=tree,
               sql_type=tree.meta["sql_type"], source=source.name, window=window,
               offset_days=spec.as_of_offset_days or 0, where=where)


def _expression_tag(doc: LocatedYaml, i: int, name: str, spec: TagSpec, tag_types: dict[str, str]) -> Tag:
    assert spec.expression is not None
    line = doc.line_of(("tags", i, "expression"))
    columns = {**CUSTOMER_COLUMNS, **tag_types}
    tree = parse_expression(spec.expression, columns=columns, kind="value", where=f"{doc.file}:{line} tag {name}")
    used = sorted({c.name for c in tree.find_all(exp.Column)} & set(tag_types))
    if name in used:
        raise _error(doc, line, name, "the expression uses the tag itself",
                     "a tag cannot be defined in terms of itself")
    return Tag(**_common(spec, name, None), line=doc.line_of(("tags", i, "name")), kind="expression", tree=tree,
               sql_type=tree.meta["sql_type"], depends_on=tuple(used))


def _layers(doc: LocatedYaml, tags: list[Tag]) -> tuple[tuple[str, ...], ...]:
    """Expression tags grouped so each layer uses only aggregates and earlier layers."""
    done = {t.name for t in tags if t.kind == "aggregate"}
    pending = [t for t in tags if t.kind == "expression"]
    layers: list[tuple[str, ...]] = []
    while pending:
        ready = [t for t in pending if set(t.depends_on) <= done]
        if not ready:
            cycle = pending[0]
            names = ", ".join(f"{t.name} (line {t.line})" for t in pending)
            raise _error(doc, cycle.line, cycle.name, f"tags refer to each other in a cycle: {names}",
                         "break the cycle: one of these tags must be computed without the others")
        layers.append(tuple(t.name for t in ready))
        done |= {t.name for t in ready}
        pending = [t for t in pending if t.name not in done]
    return tuple(layers)


def type_class(sql_type: str) -> str:
    """integer, decimal, double, boolean, date, text or other, for a DuckDB type name."""
    t = sql_type.upper()
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "UHUGEINT", "INT"):
        return "integer"
    if t.startswith("DECIMAL"):
        return "decimal"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return "double"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATE":
        return "date"
    if t in ("VARCHAR", "STRING", "TEXT"):
        return "text"
    if t == '"NULL"' or t == "NULL":
        return "null"
    return "other"


# declared class -> computed classes that convert the same way on every engine
_COMPATIBLE = {
    "integer": {"integer", "decimal", "double", "null"},  # fractions are rounded half away from zero
    "decimal": {"integer", "decimal", "null"},
    "double": {"integer", "decimal", "double", "null"},
    "boolean": {"boolean", "null"},
    "date": {"date", "null"},
    "text": {"text", "integer", "boolean", "null"},
}


def _check_type(doc: LocatedYaml, line: int | None, tag: Tag) -> None:
    declared, computed = type_class(tag.type), type_class(tag.sql_type)
    if computed in _COMPATIBLE[declared]:
        return
    if declared == "decimal" and computed == "double":
        raise _error(doc, line, tag.name, f"the value is a DOUBLE but the tag is declared {tag.type}; engines "
                     "round a DOUBLE into a DECIMAL differently", "declare the tag DOUBLE")
    raise _error(doc, line, tag.name, f"the value is {tag.sql_type} but the tag is declared {tag.type}",
                 f"declare it as {tag.sql_type if computed != 'other' else 'a matching type'}, "
                 "or change the expression")
