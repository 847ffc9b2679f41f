"""Cross-checks of the strategy map that a schema alone cannot do; every problem names file, line,
strategy and field.

Structure (always): unique strategy and wave ids, waves that depend on a known earlier wave, a
script for every channel a wave can use, scripts using whitelisted variables only, no product
promoted under ``purpose: service``, marketing SMS that pass the lint (signature, opt-out phrase,
no inducing words; settings in contact_policy.yaml ``marketing_sms``) and ``personalised: false`` only on
strategies whose audience reads no derived column. References (when
the lake is known): audience rules over known columns, offers of known products, scenario stages and
segments that exist.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlglot import exp

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.scripts import SCRIPT_VARIABLES, script_id, template_problems, template_variables
from lifeloop.config.sms_lint import lint
from lifeloop.config.strategies import Script, StrategiesConfig, Strategy, selection_cells
from lifeloop.engine.compile import compile_rule, compile_value, contradictions, rule_problem
from lifeloop.errors import ConfigError, Problem, RuleError
from lifeloop.strategy.events import EVENT_COLUMNS

if TYPE_CHECKING:
    from lifeloop.config.loader import LocatedYaml

CONFIG = "config/strategies.yaml"


class _Where:
    """Locates fields of one strategy in the YAML file."""

    def __init__(self, doc: LocatedYaml | None, index: int, strategy: Strategy):
        self.doc, self.i, self.s = doc, index, strategy
        self.file = doc.file if doc else CONFIG

    def problem(self, message: str, *path: object) -> Problem:
        loc = ("strategies", self.i, *path)
        line = self.doc.line_of(loc) if self.doc else None
        field = f"strategies[{self.i}]" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        return Problem(message, file=self.file, line=line, rule=f"strategy {self.s.id}", field=field)

    def text(self, *path: object) -> str:
        loc = ("strategies", self.i, *path)
        line = self.doc.line_of(loc) if self.doc else None
        return f"{self.file}:{line} strategy {self.s.id}" if line else f"{self.file} strategy {self.s.id}"


def _raise(problems: list[Problem], what: str, hint: str) -> None:
    if problems:
        first = problems[0]
        raise ConfigError(f"{first.file}: {len(problems)} problem(s) in the strategy map ({what}); first: {first}",
                          problems=problems, hint=hint)


# Variables whose only use is to promote an offer: a message naming them is marketing.
PROMOTING_VARIABLES = ("product_name", "offer_code")


def _scripts(s: Strategy) -> list[tuple[str | None, str, Script, tuple[object, ...]]]:
    """(cell, channel, script, path in the strategy) for the strategy's scripts and each cell's own."""
    out: list[tuple[str | None, str, Script, tuple[object, ...]]] = [
        (None, ch, script, ("scripts", ch)) for ch, script in s.scripts.items()]
    for j, cell in enumerate(s.cells):
        out += [(cell.id, ch, script, ("cells", j, "scripts", ch)) for ch, script in cell.scripts.items()]
    return out


def _texts(s: Strategy) -> list[tuple[str | None, str, str, str, tuple[object, ...]]]:
    """(cell, channel, language, text, path) of every non-empty script text of the strategy."""
    return [(cell, ch, lang, getattr(script, lang), (*path, lang)) for cell, ch, script, path in _scripts(s)
            for lang in ("zh", "en") if getattr(script, lang)]


def _mentions(text: str, name: str) -> bool:
    """``text`` names ``name`` as a whole word (product WM01 is not mentioned by WM012)."""
    return re.search(rf"(?<![0-9A-Za-z_]){re.escape(name)}(?![0-9A-Za-z_])", text, re.IGNORECASE) is not None


def purpose_problems(s: Strategy, at: _Where, policy: ContactPolicy) -> list[Problem]:
    """A strategy that offers or promotes a product cannot be a service message (which skips the marketing opt-in).

    PIPL and CBIRC Order 2022 No 9: marketing needs the customer's consent to marketing; calling a
    product offer "service" would send it to customers who never opted in.
    """
    if policy.purpose(s.objective.kind, s.purpose) != "service":
        return []
    reasons = [f"its offer is product {s.offer.product_id!r}"] if s.offer.product_id else []
    for cell, ch, lang, text, _ in _texts(s):
        used = [v for v in PROMOTING_VARIABLES if v in template_variables(text)]
        named = [x for x in (s.offer.product_id, s.offer.code) if x and _mentions(text, x)]
        if used or named:
            what = " and ".join([f"{{{{ {v} }}}}" for v in used] + [f"names {x!r}" for x in named])
            reasons.append(f"script {script_id(s.id, ch, cell)} ({lang}) uses {what}")
    if not reasons:
        return []
    if s.purpose == "service":
        return [at.problem("purpose: service, but " + "; ".join(reasons) + ": a product offer is marketing "
                           "and needs the customer's marketing consent; use purpose: marketing", "purpose")]
    return [at.problem(f"contact_policy.yaml consent.purpose_by_objective makes objective {s.objective.kind!r} a "
                       "service message, but " + "; ".join(reasons) + ": use purpose: marketing on this strategy",
                       "objective", "kind")]


def sms_problems(s: Strategy, at: _Where, policy: ContactPolicy) -> list[Problem]:
    """Every marketing SMS template of the strategy carries the signature and an opt-out phrase, no inducing word."""
    rules = policy.marketing_sms
    if policy.purpose(s.objective.kind, s.purpose) != "marketing":
        return []
    out: list[Problem] = []
    for cell, ch, lang, text, path in _texts(s):
        if ch in rules.channels:
            out += [at.problem(f"marketing {ch} template {script_id(s.id, ch, cell)} ({lang}): {msg}", *path)
                    for msg in lint(text, lang, rules)]
    return out


# What a non-personalised strategy's audience may read: the day's events, which say what happened today, not
# what the bank inferred about the customer (no tags, stages, segments, clusters or scores).
NON_PERSONALISED_COLUMNS = frozenset(EVENT_COLUMNS)


def rule_names(text: str) -> set[str] | None:
    """The column names a rule reads (lower case), or None when it does not parse (the audience check says why)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except (SqlglotError, ValueError):
        return None
    return {c.name.lower() for c in tree.find_all(exp.Column)}


def personalisation_problems(s: Strategy, at: _Where, thresholds: Collection[str]) -> list[Problem]:
    """``personalised: false`` is a promise: the audience reads no derived tag, segment or score, and targets none.

    PIPL Art. 24: a customer who opted out of personalised marketing may still receive this strategy, so it
    must not select them by their profile.
    """
    if s.personalised:
        return []
    out: list[Problem] = []
    names = rule_names(s.audience)
    derived = sorted((names or set()) - NON_PERSONALISED_COLUMNS - {t.lower() for t in thresholds})
    if derived:
        out.append(at.problem(f"personalised: false, but the audience reads {', '.join(derived)}: derived tags, "
                              "stages, segments and scores select customers by their profile (PIPL Art. 24); use only "
                              f"the day's events ({', '.join(sorted(NON_PERSONALISED_COLUMNS))}) or remove "
                              "personalised: false", "audience"))
    if s.scenario.segments:
        out.append(at.problem("personalised: false, but the scenario targets segments "
                              f"{', '.join(s.scenario.segments)}: remove them or remove personalised: false",
                              "scenario", "segments"))
    return out


def check_structure(config: StrategiesConfig, doc: LocatedYaml | None = None,
                    policy: ContactPolicy | None = None) -> None:
    """Ids, waves, channels and scripts hang together; purposes and marketing SMS comply (no lake needed).

    ``policy`` (contact_policy.yaml) gives each strategy's purpose and the SMS lint settings; without
    it, the defaults.
    """

    policy = policy or ContactPolicy()
    problems: list[Problem] = []
    compliance: list[Problem] = []
    seen: dict[str, int] = {}
    for i, s in enumerate(config.strategies):
        at = _Where(doc, i, s)
        if s.id in seen:
            problems.append(at.problem(f"strategy id {s.id!r} is used twice (first at strategies[{seen[s.id]}])", "id"))
        seen.setdefault(s.id, i)
        waves: dict[str, int] = {}
        for j, w in enumerate(s.waves):
            if w.id in waves:
                problems.append(at.problem(f"wave id {w.id!r} is used twice", "waves", j, "id"))
            if w.channel and w.channel not in s.channels:
                problems.append(at.problem(f"wave {w.id} uses channel {w.channel!r}, which is not among the "
                                           f"strategy's channels {s.channels}", "waves", j, "channel"))
            dep = w.depends_on
            if j == 0 and dep is not None:
                problems.append(at.problem(f"the first wave {w.id} cannot depend on another wave "
                                           "(it goes out when the audience rule is true)", "waves", j, "depends_on"))
            elif j > 0 and dep is None:
                problems.append(at.problem(f"wave {w.id} needs depends_on: the wave it follows "
                                           "(and the outcome: no_response, responded or any)", "waves", j))
            elif dep is not None and dep.wave not in waves:
                known = list(waves)
                close = difflib.get_close_matches(dep.wave, [x.id for x in s.waves], n=1)
                later = dep.wave in [x.id for x in s.waves]
                msg = (f"wave {w.id} depends on wave {dep.wave!r}, which comes later; list waves in order" if later else
                       f"wave {w.id} depends on unknown wave {dep.wave!r}"
                       + (f"; did you mean {close[0]!r}?" if close else f" (waves before it: {', '.join(known)})"))
                problems.append(at.problem(msg, "waves", j, "depends_on", "wave"))
            elif dep is not None and w.day <= s.waves[waves[dep.wave]].day:
                problems.append(at.problem(f"wave {w.id} (day {w.day}) must come after wave {dep.wave} "
                                           f"(day {s.waves[waves[dep.wave]].day})", "waves", j, "day"))
            waves.setdefault(w.id, j)
        used = {c for w in s.waves for c in s.channels_of(w)}
        for ch in sorted(used - set(s.scripts)):
            problems.append(at.problem(f"no script for channel {ch!r} (every channel a wave may use needs one)",
                                       "scripts"))
        for ch, script in s.scripts.items():
            for lang in ("zh", "en"):
                text = getattr(script, lang)
                for msg in template_problems(text) if text else []:
                    problems.append(at.problem(f"script {ch}.{lang}: {msg}", "scripts", ch, lang))
        compliance += (purpose_problems(s, at, policy) + sms_problems(s, at, policy)
                       + personalisation_problems(s, at, config.thresholds))
    hint = ("fix the fields named above (see docs/strategies.md); script variables are: " + ", ".join(SCRIPT_VARIABLES)
            if problems else "fix the purposes and scripts named above (see docs/strategies.md, Compliance checks)")
    if compliance and problems:
        hint += "; marketing SMS and purposes: see docs/strategies.md, Compliance checks"
    _raise(problems + compliance, "structure", hint)


def compile_audiences(config: StrategiesConfig, columns: Mapping[str, str], as_of: dt.date,
                      doc: LocatedYaml | None = None, models: Mapping[str, str] | None = None,
                      scored: set[str] | None = None) -> dict[str, exp.Expression]:
    """Each strategy's audience rule as an engine-neutral boolean tree; errors name file, line, strategy.

    ``models`` (declared name -> kind) lets rules read scores (``score('churn') >= 0.6``); ``scored`` names
    the models with scores for the day. A strategy whose audience reads a model without scores today uses
    its ``fallback_audience`` instead, or selects no one without one; ``meta["fallback"]`` of its tree says
    which, for the run's warnings and manifest."""

    out: dict[str, exp.Expression] = {}
    problems: list[Problem] = []
    first: RuleError | None = None
    for i, s in enumerate(config.strategies):
        at = _Where(doc, i, s)
        try:
            tree = compile_rule(s.audience, columns=columns, thresholds=config.thresholds, as_of=as_of,
                                where=f"{at.text('audience')} field audience", models=models)
            missing = sorted(tree.meta["models"] - (scored or set())) if models is not None else []
            if missing and s.fallback_audience is not None:
                fallback = compile_rule(s.fallback_audience, columns=columns, thresholds=config.thresholds,
                                        as_of=as_of, where=f"{at.text('fallback_audience')} field fallback_audience")
                fallback.meta["fallback"] = (f"strategy {s.id}: no scores of {', '.join(missing)} today; its "
                                             f"fallback_audience rule selects instead ({s.fallback_audience})")
                tree = fallback
            elif missing:
                reason = (f"strategy {s.id}: no scores of {', '.join(missing)} today and no fallback_audience: "
                          "it selects no one")
                tree = exp.false()
                tree.meta.update(names=frozenset(), models=frozenset(), fallback=reason)
            if selection_cells(s):
                tree = with_selections(tree, s, at, columns, config.thresholds, as_of, models, scored)
            if s.top is not None:
                by = compile_value(s.top.by, columns=columns, thresholds=config.thresholds, as_of=as_of,
                                   where=f"{at.text('top', 'by')} field top.by", models=models)
                gone = sorted(by.meta["models"] - (scored or set())) if models is not None else []
                if gone:
                    note = (f"strategy {s.id}: no scores of {', '.join(gone)} today; the top {s.top.share:.0%} "
                            f"by {s.top.by} is not applied: the whole audience is selected")
                    tree.meta["fallback"] = "; ".join(filter(None, [tree.meta.get("fallback"), note]))
                else:
                    tree.meta["top"] = (s.top.share, by)
                    tree.meta["models"] = tree.meta.get("models", frozenset()) | by.meta["models"]
            if s.expected.value_by is not None:
                value_by(tree, s, at, columns, config.thresholds, as_of, models, scored)
            out[s.id] = tree
        except ConfigError as exc:
            first = first or (exc if isinstance(exc, RuleError) else None)
            path = exc.path if isinstance(exc, _CellRuleError) else ("audience",)
            problems.append(at.problem(exc.message + (f" ({exc.hint})" if exc.hint else ""), *path))
    if problems:
        raise RuleError(problems[0].message if len(problems) == 1 else
                        f"{problems[0].file}: {len(problems)} audience rules are invalid; first: {problems[0]}",
                        problems=problems, hint=first.hint if first else "fix the audience rules named above")
    return out


def value_by(tree: exp.Expression, s: Strategy, at: _Where, columns: Mapping[str, str],
             thresholds: Mapping[str, float], as_of: dt.date, models: Mapping[str, str] | None,
             scored: set[str] | None) -> None:
    """Compile ``expected.value_by`` into ``tree.meta["value_by"]`` (each customer's value of a success); on a day
    without the scores it reads, every customer is worth ``expected.value`` and ``meta["fallback"]`` says so."""
    where = f"{at.text('expected', 'value_by')} field expected.value_by"
    try:
        value = compile_value(s.expected.value_by or "", columns=columns, thresholds=thresholds, as_of=as_of,
                              where=where, models=models)
    except ConfigError as exc:
        raise _CellRuleError(exc, ("expected", "value_by")) from None
    gone = sorted(value.meta["models"] - (scored or set())) if models is not None else []
    if gone:
        note = (f"strategy {s.id}: no scores of {', '.join(gone)} today; every customer's value of a success is "
                f"expected.value ({s.expected.value:g}), not {s.expected.value_by}")
        tree.meta["fallback"] = "; ".join(filter(None, [tree.meta.get("fallback"), note]))
        return
    tree.meta["value_by"] = value
    tree.meta["models"] = tree.meta.get("models", frozenset()) | value.meta["models"]


class _CellRuleError(RuleError):
    """A cell's select rule that does not compile, with the path of its field (``cells[0].select``)."""

    def __init__(self, exc: ConfigError, path: tuple[object, ...]):
        super().__init__(exc.message, hint=exc.hint)
        self.path = path


def with_selections(tree: exp.Expression, s: Strategy, at: _Where, columns: Mapping[str, str],
                    thresholds: Mapping[str, float], as_of: dt.date, models: Mapping[str, str] | None,
                    scored: set[str] | None) -> exp.Expression:
    """The audience of a strategy with selection cells: ``audience AND (select_1 OR select_2 ...)``.

    ``meta["cells"]`` lists (cell id, select tree) in order: the audiences step puts each customer in the
    first cell whose select is true. A select reading a model without scores today selects no one (the
    other cells go on) and says so in ``meta["fallback"]``."""
    cells: list[tuple[str, exp.Expression]] = []
    notes: list[str] = [tree.meta["fallback"]] if tree.meta.get("fallback") else []
    read = set(tree.meta.get("models", frozenset()))
    names = set(tree.meta.get("names", frozenset()))
    for j, cell in enumerate(s.cells):
        assert cell.select is not None
        try:
            sel = compile_rule(cell.select, columns=columns, thresholds=thresholds, as_of=as_of,
                               where=f"{at.text('cells', j, 'select')} field cells[{j}].select", models=models)
        except ConfigError as exc:
            raise _CellRuleError(exc, ("cells", j, "select")) from exc
        missing = sorted(sel.meta["models"] - (scored or set())) if models is not None else []
        if missing:
            notes.append(f"strategy {s.id}: no scores of {', '.join(missing)} today: cell {cell.id} "
                         f"({cell.select}) selects no one")
            sel = exp.false()
        else:
            read |= sel.meta["models"]
            names |= sel.meta["names"]
        cells.append((cell.id, sel))
    anyone: exp.Expression = exp.Paren(this=cells[0][1].copy())
    for _, sel in cells[1:]:
        anyone = exp.or_(anyone, exp.Paren(this=sel.copy()))
    out = exp.and_(exp.Paren(this=tree.copy()), exp.Paren(this=anyone))
    out.meta.update(tree.meta)
    out.meta.update(names=frozenset(names), models=frozenset(read), cells=cells)
    if notes:
        out.meta["fallback"] = "; ".join(notes)
    return out


def check_audiences(config: StrategiesConfig, columns: Mapping[str, str], as_of: dt.date,
                    doc: LocatedYaml | None = None, models: Mapping[str, str] | None = None
                    ) -> tuple[list[Problem], list[Problem]]:
    """Every audience rule at once, as (errors, warnings), never raising: rules that do not compile (an
    unknown model in ``score('x')`` among them), and rules whose bounds contradict each other."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for i, s in enumerate(config.strategies):
        at = _Where(doc, i, s)
        if s.fallback_audience is not None:
            where = f"{at.text('fallback_audience')} field fallback_audience"
            try:
                compile_rule(s.fallback_audience, columns=columns, thresholds=config.thresholds, as_of=as_of,
                             where=where)
            except ConfigError as exc:
                errors.append(replace(at.problem(rule_problem(exc, where).message, "fallback_audience"),
                                      hint=exc.hint))
        where = f"{at.text('audience')} field audience"
        try:
            tree = compile_rule(s.audience, columns=columns, thresholds=config.thresholds, as_of=as_of, where=where,
                                models=models)
        except ConfigError as exc:
            errors.append(replace(at.problem(rule_problem(exc, where).message, "audience"), hint=exc.hint))
            continue
        if s.top is not None:
            where_top = f"{at.text('top', 'by')} field top.by"
            try:
                compile_value(s.top.by, columns=columns, thresholds=config.thresholds, as_of=as_of,
                              where=where_top, models=models)
            except ConfigError as exc:
                errors.append(replace(at.problem(rule_problem(exc, where_top).message, "top", "by"), hint=exc.hint))
        if s.expected.value_by is not None:
            where_value = f"{at.text('expected', 'value_by')} field expected.value_by"
            try:
                compile_value(s.expected.value_by, columns=columns, thresholds=config.thresholds, as_of=as_of,
                              where=where_value, models=models)
            except ConfigError as exc:
                errors.append(replace(at.problem(rule_problem(exc, where_value).message, "expected", "value_by"),
                                      hint=exc.hint))
        for j, cell in enumerate(s.cells if selection_cells(s) else []):
            where_cell = f"{at.text('cells', j, 'select')} field cells[{j}].select"
            try:
                compile_rule(cell.select or "", columns=columns, thresholds=config.thresholds, as_of=as_of,
                             where=where_cell, models=models)
            except ConfigError as exc:
                errors.append(replace(at.problem(rule_problem(exc, where_cell).message, "cells", j, "select"),
                                      hint=exc.hint))
        if tree.meta["models"] and s.fallback_audience is None:
            warnings.append(replace(at.problem(f"reads model(s) {', '.join(sorted(tree.meta['models']))} and has "
                                               "no fallback_audience: on a day without their scores it selects "
                                               "no one", "audience"),
                                    hint="add fallback_audience: a plain rule to use on such a day"))
        for col in contradictions(tree):
            warnings.append(replace(at.problem(f"can never match anyone: the bounds on {col!r} contradict each other",
                                               "audience"),
                                    hint=f"check the comparisons of {col} and the thresholds they use"))
    return errors, warnings


def check_references(config: StrategiesConfig, doc: LocatedYaml | None = None, *,
                     products: Collection[str] | None = None, stages: Collection[str] | None = None,
                     segments: Collection[str] | None = None) -> None:
    """Offers name known products; scenario stages and segments exist (each check only when known)."""
    problems: list[Problem] = []
    for i, s in enumerate(config.strategies):
        at = _Where(doc, i, s)
        pid = s.offer.product_id
        if products is not None and pid and pid not in products:
            close = difflib.get_close_matches(pid, list(products), n=1)
            problems.append(at.problem(f"unknown product {pid!r}" + (f"; did you mean {close[0]!r}?" if close else
                                       " (not in the bank's product catalogue)"), "offer", "product_id"))
        for name, known, key in ((s.scenario.stages, stages, "stages"), (s.scenario.segments, segments, "segments")):
            for j, value in enumerate(name):
                if known is not None and value not in known:
                    close = difflib.get_close_matches(value, list(known), n=1)
                    problems.append(at.problem(f"unknown {key[:-1]} {value!r}"
                                               + (f"; did you mean {close[0]!r}?" if close else ""),
                                               "scenario", key, j))
    _raise(problems, "references", "name products of the catalogue, stages of config/lifecycle.yaml and tiers "
                                   "or groups of config/segments.yaml")
