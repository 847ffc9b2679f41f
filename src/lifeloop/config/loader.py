"""Load YAML into strict pydantic models; every error names the file, the line and the field.

PyYAML's composed node tree keeps the line of every key and value. We build plain Python objects
from it and remember, for every path (``("tags", 3, "window_days")``), the line it came from, so a
pydantic error location can be turned into ``config/tags.yaml:42 field tags[3].window_days``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from lifeloop.errors import ConfigError, Problem

M = TypeVar("M", bound=BaseModel)
PathKey = tuple[Any, ...]


class LocatedYaml:
    """Plain data loaded from YAML plus the line of every path in it."""

    def __init__(self, data: Any, lines: dict[PathKey, int], file: str):
        self.data = data
        self.lines = lines
        self.file = file

    def line_of(self, path: PathKey) -> int | None:
        """The line of the deepest known prefix of ``path`` (1-based)."""
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def _construct(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                line = key_node.start_mark.line + 1
                raise ConfigError(f"{file}:{line}: YAML merge keys (<<) are not supported",
                                  problems=[Problem("YAML merge keys (<<) are not supported", file=file, line=line)],
                                  hint="write the keys out in full")
            key = _construct(key_node, path + ("<key>",), {}, file)
            if key in out:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"{file}:{line}: duplicate key {key!r}",
                                  problems=[Problem(f"duplicate key {key!r}", file=file, line=line,
                                                    field=format_loc(path + (key,)))],
                                  hint="each key may appear once; remove or rename the repeated one")
            out[key] = _construct(value_node, path + (key,), lines, file)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, path + (i,), lines, file) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    # a fresh SafeLoader resolves the scalar exactly as yaml.safe_load would (ints, dates, bools)
    return yaml.SafeLoader("").construct_object(node, deep=True)


def load_yaml(path: str | Path, *, text: str | None = None) -> LocatedYaml:
    """Read a YAML file into plain data with line numbers; syntax errors name file and line."""
    p = Path(path)
    file = str(path)
    if text is None:
        if not p.exists():
            raise ConfigError(f"{file}: file not found",
                              hint="check the path, or run `lifeloop init` to create a workspace")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                              hint="save the file as UTF-8") from None
    parsed = _PARSED.get(text)
    if parsed is not None:
        return LocatedYaml(copy.deepcopy(parsed[0]), dict(parsed[1]), file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"{file}:{line}: YAML syntax error: {exc.problem}",
                          problems=[Problem(str(exc.problem), file=file, line=line)],
                          hint="fix the indentation or quoting on that line") from None
    except yaml.YAMLError as exc:   # e.g. a control character the YAML reader refuses
        raise ConfigError(f"{file}: not YAML text: {str(exc).splitlines()[0]}",
                          problems=[Problem(f"not YAML text: {str(exc).splitlines()[0]}", file=file)],
                          hint="remove control characters; save the text as plain UTF-8") from None
    lines: dict[PathKey, int] = {}
    data = {} if node is None else _construct(node, (), lines, file)
    if len(_PARSED) >= MAX_PARSED:
        _PARSED.clear()
    _PARSED[text] = (copy.deepcopy(data), dict(lines))
    return LocatedYaml(data, lines, file)


# YAML texts this process has read, by their exact text: the data and line numbers (errors are not kept). The same
# config files (the strategy map stored with each day's audiences, the simulator's truth, ...) are read again on
# every daily run; composing a document keeps line numbers and costs a YAML loader per scalar, so each text is
# composed once. The file is still read each time, so an edited file is seen at once.
_PARSED: dict[str, tuple[Any, dict[PathKey, int]]] = {}
MAX_PARSED = 64


def format_loc(loc: PathKey) -> str:
    """``("tags", 3, "window_days")`` -> ``tags[3].window_days``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _clean_loc(loc: PathKey) -> PathKey:
    # pydantic puts union/discriminator tags and function-validator names into locations
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))


def problems_from_pydantic(exc: PydanticValidationError, doc: LocatedYaml,
                           model: type[BaseModel] | None = None) -> list[Problem]:
    """Turn pydantic errors into located problems with plain words."""
    problems: list[Problem] = []
    for err in exc.errors():
        loc = _clean_loc(tuple(err["loc"]))
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}" if loc else "unknown key"
            known = _known_fields(model, loc[:-1]) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
            if close:
                msg += f"; did you mean {close[0]!r}?"
            elif known:
                msg += f" (allowed here: {', '.join(known)})"
        elif kind == "missing":
            msg = "required field is missing"
        else:
            msg = err["msg"]
            if "input" in err and not isinstance(err["input"], (dict, list)):
                msg += f" (got {err['input']!r})"
        problems.append(Problem(msg, file=doc.file, line=doc.line_of(loc), field=format_loc(loc)))
    return problems


def _model_at(model: Any, loc: PathKey) -> Any:
    """Follow a location through a model's annotations to the model found there (best effort)."""
    for part in loc:
        if isinstance(part, str) and isinstance(model, type) and issubclass(model, BaseModel):
            f = model.model_fields.get(part)
            if f is None:
                return None
            model = f.annotation
        elif isinstance(part, str) and typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]  # a named entry of a mapping, e.g. tables.customers
        elif isinstance(part, int):
            model = next((a for a in typing.get_args(model) if a is not type(None)), None)
        else:
            return None
        # unwrap Optional[X] / X | None and list[X]
        while model is not None and typing.get_origin(model) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(model) if a is not type(None)]
            model = args[0] if len(args) == 1 else next(
                (a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), args[0])
    return model


def _known_fields(model: type[BaseModel], loc: PathKey) -> list[str]:
    target = _model_at(model, loc)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return sorted(target.model_fields)
    return []


def validate_model(model: type[M], doc: LocatedYaml) -> M:
    """Validate located data against a strict model; raise ConfigError naming file, line, field."""
    try:
        return model.model_validate(doc.data)
    except PydanticValidationError as exc:
        problems = problems_from_pydantic(exc, doc, model)
        first = problems[0]
        raise ConfigError(f"{doc.file}: {len(problems)} problem(s) in configuration; first: {first}",
                          problems=problems, hint="fix the fields named above (see docs/configuration.md)") from None


def load_model(model: type[M], path: str | Path) -> tuple[M, LocatedYaml]:
    """Load a YAML file into ``model``; return the model and the located document (for later checks)."""
    doc = load_yaml(path)
    return validate_model(model, doc), doc


def config_hash(folder: Path, *names: str) -> str:
    """A short hash of ``folder/<name>.yaml`` for each name (a missing file hashes as empty)."""
    h = hashlib.sha256()
    for name in sorted(names):
        path = folder / f"{name}.yaml"
        h.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    return h.hexdigest()[:16]


class Overlay(typing.Protocol):
    """What changes a config file's data before it is validated (the strategy map's approved versions)."""

    def stamp(self) -> str:
        """What is in force now, cheaply (empty: nothing, the file alone)."""
        ...

    def apply(self, doc: LocatedYaml) -> LocatedYaml:
        """The file's located data with the overlay applied."""
        ...


class ConfigFolder:
    """The config files of a workspace, loaded once each into their strict models (the steps' config port).

    ``overlays`` (by file name) change a file's data before it is validated: the workspace's strategy map is
    config/strategies.yaml with the approved strategy versions of the operations database over it (the live map,
    docs/strategies.md). An overlaid file is loaded again whenever its overlay's stamp changes, and its stamp
    enters :meth:`hash`, so a snapshot says which versions it used."""

    def __init__(self, folder: Path, root: Path | None = None, overlays: dict[str, Overlay] | None = None):
        self.folder = Path(folder)
        self.root = root
        self.overlays = dict(overlays or {})
        self._cache: dict[str, tuple[Any, LocatedYaml]] = {}
        self._stamps: dict[str, str] = {}
        self.checked: str | None = None  # hash of the files the last successful pre-flight check saw

    def path(self, name: str) -> Path:
        """``config/<name>.yaml`` of this workspace."""
        return self.folder / f"{name}.yaml"

    def exists(self, name: str) -> bool:
        """Whether the workspace has ``config/<name>.yaml``."""
        return self.path(name).exists()

    def _stamp(self, name: str) -> str:
        overlay = self.overlays.get(name)
        return overlay.stamp() if overlay is not None else ""

    def load(self, name: str, model: type[M]) -> tuple[M, LocatedYaml]:
        """The validated model and located document (errors name the file relative to the workspace)."""
        stamp = self._stamp(name)
        if name not in self._cache or self._stamps.get(name) != stamp:
            path = self.path(name)
            doc = load_yaml(path)
            if self.root is not None:
                try:
                    doc.file = str(path.relative_to(self.root))
                except ValueError:
                    pass
            if stamp:
                doc = self.overlays[name].apply(doc)
            self._cache[name] = (validate_model(model, doc), doc)
            self._stamps[name] = stamp
        return self._cache[name]

    def source(self, name: str) -> bytes:
        """The text in force of ``config/<name>.yaml``: the file's bytes, or with an overlay in force the live data
        as YAML (kept with a snapshot so that `lifeloop why` replays exactly what was used)."""
        if not self._stamp(name):
            return self.path(name).read_bytes()
        doc = self.overlays[name].apply(load_yaml(self.path(name)))
        return yaml.safe_dump(doc.data, sort_keys=False, allow_unicode=True, width=120).encode("utf-8")

    def hash(self, *names: str) -> str:
        """A short hash of the named files' bytes (stamped on every snapshot), and of the overlays in force."""
        base = config_hash(self.folder, *names)
        stamps = [f"{n}={s}" for n in sorted(names) if (s := self._stamp(n))]
        if not stamps:
            return base
        return hashlib.sha256((base + "\0" + "\0".join(stamps)).encode()).hexdigest()[:16]
