"""``config/tags.yaml``: the feature catalogue (标签体系), as strict models.

Two kinds of tag:

* an **aggregate** tag reads a source (transactions, events, holdings), optionally keeps the rows a
  ``where`` rule accepts, and aggregates them per customer; ``windows: [30, 90, 365]`` makes one tag
  per window (the last N days up to and including D), named by the ``{window}`` template;
* an **expression** tag is a per-customer value over customer columns and other tags, with the
  vetted macros (age, days_since, months_since, safe_divide, ...).

Cross-references (unknown source, unknown tag, cycles) are checked by
:func:`lifeloop.insight.catalogue.resolve_catalogue`, which names file, line and tag.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from lifeloop.config.models import Strict

TAG_TYPES = ("INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "VARCHAR")
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Label(Strict):
    """The tag's name as people read it, in Chinese and English."""

    zh: Text
    en: Text


class TagSpec(Strict):
    """One entry of ``tags:``: an aggregate tag (``source`` + ``aggregate``) or an ``expression`` tag."""

    name: Text = Field(description="Column name; with windows, a template holding {window}.")
    label: Label
    description: Text
    type: Text = Field(description="INTEGER, BIGINT, DOUBLE, DECIMAL(p,s), BOOLEAN, DATE or VARCHAR.")
    category: Text = "other"
    # aggregate tags
    source: Text | None = None
    aggregate: Text | None = None
    where: Text | None = None
    windows: list[Annotated[int, Field(ge=1, le=3660)]] | None = None
    as_of_offset_days: Annotated[int, Field(ge=1, le=3660)] | None = None
    # expression tags
    expression: Text | None = None
    # the value for a customer without rows in the source (NULL unless given)
    default: bool | int | float | str | None = None
    # an amount of money (banded for roles that see money banded); inferred when left out (insight/money.py)
    money: bool | None = None

    @field_validator("aggregate", "where", "expression", mode="before")
    @classmethod
    def _scalar_as_text(cls, value: object) -> object:
        # YAML reads `expression: 1` or `where: true` as a number or a boolean; they are SQL all the same
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        v = re.sub(r"\s+", "", value.upper())
        v = {"INT": "INTEGER", "STRING": "VARCHAR", "TEXT": "VARCHAR", "FLOAT8": "DOUBLE"}.get(v, v)
        m = _DECIMAL.match(v)
        if m:
            p, s = int(m.group(1)), int(m.group(2))
            if not (1 <= p <= 38 and 0 <= s <= p):
                raise ValueError(f"DECIMAL({p},{s}) is not a valid decimal: 1 <= precision <= 38, scale <= precision")
            return f"DECIMAL({p},{s})"
        if v not in TAG_TYPES:
            raise ValueError(f"unknown type {value!r}; use one of {', '.join(TAG_TYPES)} or DECIMAL(p,s)")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> TagSpec:
        if self.expression is not None:
            extra = [k for k in ("source", "aggregate", "where", "windows", "as_of_offset_days")
                     if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"an expression tag cannot also have {', '.join(extra)}; "
                                 "use either expression, or source + aggregate")
        elif self.source is None or self.aggregate is None:
            raise ValueError("a tag needs either expression, or source and aggregate")
        if self.windows is not None:
            if "{window}" not in self.name:
                raise ValueError("a tag with windows needs {window} in its name, e.g. txn_count_{window}d")
            if len(set(self.windows)) != len(self.windows):
                raise ValueError("windows are repeated")
        elif "{window}" in self.name:
            raise ValueError("the name holds {window} but the tag has no windows")
        return self

    def names(self) -> list[tuple[str, int | None]]:
        """The column names this entry makes, with their window (None without windows)."""
        if self.windows is None:
            return [(self.name, None)]
        return [(self.name.replace("{window}", str(w)), w) for w in self.windows]


class TagsConfig(Strict):
    """The whole ``config/tags.yaml``."""

    version: int = 1
    tags: list[TagSpec]


def valid_tag_name(name: str) -> bool:
    """Tag names are lower-case identifiers (they become column names in every engine)."""
    return bool(_NAME.match(name))
