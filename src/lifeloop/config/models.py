"""Shared base for strict config models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A config model that refuses unknown keys (a YAML typo fails loudly)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
