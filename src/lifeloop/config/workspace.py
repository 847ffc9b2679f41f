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


class WorkspaceConfig(Strict):
    """The top-level ``lifeloop.yaml``."""

    bank: BankInfo = Field(default_factory=BankInfo)
    engine: Literal["duckdb", "spark"] = "duckdb"
    lake: str = "lake"
    config_dir: str = "config"
    database_url: str | None = None
    spark: SparkSettings = Field(default_factory=SparkSettings)
