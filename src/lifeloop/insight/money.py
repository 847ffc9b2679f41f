"""Which features are amounts of money (AUM, balances, amounts), so every display can band them.

A tag of ``config/tags.yaml`` is money when it says ``money: true``, or, when it says nothing, when its
value is an amount by construction:

* an aggregate (sum, avg, min, max, ...) of a money column of its source (``transactions.amount``,
  ``transactions.balance_after``, ``holdings.balance``: the ``money`` kind of :mod:`lifeloop.data.masking`);
  a count of them is not money;
* an expression adding or subtracting money tags (``aum - aum_90d_ago``), scaling one by a plain number
  (``aum * 0.1``, ``aum / 12``), or choosing between them (``coalesce``, ``CASE``, ``greatest``); a ratio
  of two amounts (``(aum - aum_90d_ago) / aum_90d_ago``) and a comparison (``aum > 0``) are not money;
* any DECIMAL column with two decimals (how the features step stores amounts), whatever its name.

``money: false`` on a tag overrides the inference (a DECIMAL score, say). Roles that see money banded see
each of these as an order of magnitude (``100k-1m``) in the profile, ``lifeloop why`` and exports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from lifeloop.config.tags import TagsConfig
from lifeloop.data.masking import column_kind
from lifeloop.errors import LifeloopError
from lifeloop.insight.catalogue import Catalogue, Tag, resolve_catalogue

_NOT_MONEY = (exp.Count, exp.Predicate, exp.Connector, exp.Not, exp.Literal, exp.Null, exp.Boolean)


def is_money(node: exp.Expression, money: frozenset[str]) -> bool:
    """Whether an expression over columns (``money``: the money ones) is itself an amount of money."""
    if isinstance(node, exp.Column):
        return node.name in money
    if isinstance(node, _NOT_MONEY):
        return False
    if isinstance(node, (exp.Add, exp.Sub)):
        return is_money(node.this, money) or is_money(node.expression, money)
    if isinstance(node, exp.Mul):
        return is_money(node.this, money) != is_money(node.expression, money)
    if isinstance(node, (exp.Div, exp.SafeDivide)):
        return is_money(node.this, money) and not is_money(node.expression, money)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "safe_divide" and len(node.expressions) == 2:
        a, b = node.expressions
        return is_money(a, money) and not is_money(b, money)
    if isinstance(node, exp.If):  # a CASE branch: its value, never its condition
        return is_money(node.args["true"], money) if node.args.get("true") is not None else False
    return any(is_money(child, money) for child in node.iter_expressions())


def _decimal_2(sql_type: str) -> bool:
    t = sql_type.upper().replace(" ", "")
    return t.startswith("DECIMAL") and t.endswith(",2)")


def money_tags(catalogue: Catalogue) -> frozenset[str]:
    """The names of the catalogue's money-valued tags (declared ``money:``, else inferred)."""
    declared = {t.name: t.money for t in catalogue.tags}
    found: set[str] = set()
    for tag in catalogue.tags:   # declaration order: aggregates and the tags an expression uses come first
        said = declared.get(tag.name)
        if said is not None:
            if said:
                found.add(tag.name)
            continue
        if _decimal_2(tag.type) or _inferred(tag, frozenset(found)):
            found.add(tag.name)
    # an expression tag may be declared before the tags it uses: settle them in dependency order
    for layer in catalogue.layers:
        for name in layer:
            tag = catalogue.by_name[name]
            if declared.get(name) is None and _inferred(tag, frozenset(found)):
                found.add(name)
    return frozenset(found)


def _inferred(tag: Tag, money: frozenset[str]) -> bool:
    if tag.kind == "aggregate":
        source_money = frozenset(c.name for c in tag.tree.find_all(exp.Column)
                                 if column_kind(tag.source or "", c.name) == "money")
        return is_money(tag.tree, source_money)
    return is_money(tag.tree, money)


def money_columns(types: Mapping[str, Any], tags: frozenset[str] | None) -> frozenset[str]:
    """Columns holding money (``types``: name -> SQL or Arrow type): the money tags and any DECIMAL(p, 2)
    column; with ``tags`` None (the catalogue could not be read) every DECIMAL and DOUBLE column."""
    def fractional(t: Any) -> bool:
        text = str(t).upper()
        return text.startswith("DECIMAL") or text in ("DOUBLE", "FLOAT", "FLOAT64", "REAL")

    if tags is None:
        return frozenset(n for n, t in types.items() if fractional(t))
    return frozenset(tags) | frozenset(n for n, t in types.items() if _decimal_2(_sql(t)))


def _sql(t: Any) -> str:
    """An Arrow type (decimal128(18, 2)) or SQL type name as SQL (DECIMAL(18,2))."""
    text = str(t).upper().replace(" ", "")
    return "DECIMAL" + text[len("DECIMAL128"):] if text.startswith("DECIMAL128") else text


_RESOLVED: dict[tuple[str, str], frozenset[str]] = {}  # (config folder, tags.yaml hash) -> money tags


def workspace_money_tags(configs: Any) -> frozenset[str] | None:
    """The money tags of the workspace's ``config/tags.yaml`` (a :class:`ConfigFolder`); None when it cannot be
    read, and then every DECIMAL and DOUBLE feature is to be treated as money (:func:`money_columns`).

    Resolved once per content of the file (``why`` asks for every customer it explains)."""
    key = (str(configs.folder), configs.hash("tags"))
    if key not in _RESOLVED:
        try:
            config, doc = configs.load("tags", TagsConfig)
            _RESOLVED[key] = money_tags(resolve_catalogue(config, doc))
        except LifeloopError:
            return None
    return _RESOLVED[key]
