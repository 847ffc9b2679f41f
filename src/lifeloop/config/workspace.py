"""``lifeloop.yaml``: the workspace's own settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lifeloop.config.models import Strict


class BankInfo(Strict):
    """Who the workspace is for."""

    name: str = "Demo Retail Bank"
    currency: str = "CNY"
    timezone: str = "Asia/Shanghai"


class SparkSettings(Strict):
    """How to reach Spark when ``engine: spark``."""

    master: str = "local[2]"
    conf: dict[str, str] = Field(default_factory=dict)


class RunSettings(Strict):
    """Guards of a daily run (``run:`` in lifeloop.yaml)."""

    # `lifeloop run --as-of D` more than this many days after the newest bank batch is refused: the
    # stages and the plan would describe customers from stale data
    max_days_after_batch: int = Field(default=7, ge=0, le=3660)
    # an audience that shrinks by more than this share since its previous run is a warning
    audience_shrink_warning: float = Field(default=0.5, gt=0, le=1)


class WorkspaceConfig(Strict):
    """The top-level ``lifeloop.yaml``."""

    bank: BankInfo = Field(default_factory=BankInfo)
    engine: Literal["duckdb", "spark"] = "duckdb"
    lake: str = "lake"
    config_dir: str = "config"
    database_url: str | None = None
    spark: SparkSettings = Field(default_factory=SparkSettings)
    run: RunSettings = Field(default_factory=RunSettings)
