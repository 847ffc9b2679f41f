"""``config/events.yaml``: real-time intake (event sources) and the moments of truth (关键时刻) it watches for.

::

    sources:                        # who may send events over HTTP (POST /events), or where to read them
      - name: core_banking
        token_sha256: 9f86d0...     # SHA-256 (hex) of the service token; the token itself is never stored
        rate_per_second: 2000       # sustained requests per second (token bucket) ...
        burst: 4000                 # ... and how many may come at once
      - name: card_stream           # a Kafka topic (`lifeloop events consume --source card_stream`, [kafka] extra)
        kafka: {bootstrap_servers: "kafka1:9092,kafka2:9092", topic: card-events, group_id: lifeloop}
    reentry_hours: 24               # one entry per strategy per this (or its reentry_days, if longer)
    moments:                        # detectors: a strategy reacts to one with scenario {kind: event, name: <id>}
      - {id: salary_credited, kind: salary_credited}
      - {id: large_inflow, kind: large_inflow, amount: 50000}
      - {id: large_outflow, kind: large_outflow, amount: 50000, other_bank_only: true}
      - {id: low_balance, kind: low_balance, below: 1000}
      - {id: first_card_swipe, kind: first_card_swipe}
      - {id: product_interest, kind: product_interest, views: 3, within_days: 7}
      - {id: back_after_absence, kind: long_absence_login, absent_days: 90}

Every detector's exact definition is in :mod:`lifeloop.realtime.detectors` (one definition for the
stream and for the batch replay of a day).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from lifeloop.config.models import Strict
from lifeloop.config.types import Name

SHA256 = re.compile(r"^[0-9a-f]{64}$")


KAFKA_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")   # Kafka's own rule for topic names
SERVERS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}(,[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5})*$")
OWNED = {"bootstrap.servers", "group.id", "enable.auto.commit", "enable.auto.offset.store", "auto.offset.reset",
         "client.id", "security.protocol", "session.timeout.ms"}


class KafkaSettings(Strict):
    """Where a Kafka source reads (lifeloop.realtime.kafka): offsets are committed by Lifeloop after the decision."""

    bootstrap_servers: str
    topic: str
    group_id: str
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    client_id: str = "lifeloop"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    session_timeout_ms: int = Field(default=45_000, ge=1_000, le=3_600_000)
    batch: int = Field(default=500, ge=1, le=5_000)          # messages per batch: stored, decided, committed
    poll_seconds: float = Field(default=1.0, gt=0, le=60)    # how long a poll waits for the first message
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)   # other librdkafka settings

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, v: str) -> str:
        if not SERVERS.match(v):
            raise ValueError("bootstrap_servers must be host:port, comma-separated (e.g. kafka1:9092,kafka2:9092)")
        return v

    @field_validator("topic", "group_id")
    @classmethod
    def _kafka_name(cls, v: str) -> str:
        if not KAFKA_NAME.match(v):
            raise ValueError(f"{v!r} is not a Kafka name: 1-249 letters, digits, '.', '_' or '-'")
        return v

    @field_validator("options")
    @classmethod
    def _options(cls, v: dict[str, object]) -> dict[str, object]:
        owned = sorted(set(v) & OWNED)
        if owned:
            raise ValueError(f"options may not set {owned[0]!r}: Lifeloop sets it (offsets are committed only after "
                             "the decision); use the field of the same meaning where there is one")
        if any("password" in k or "secret" in k for k in v):
            raise ValueError("options may not hold a password or secret: events.yaml is a committed config file "
                             "(use SSL with certificate files: ssl.ca.location, ssl.certificate.location ...)")
        return v


class Source(Strict):
    """An event source: allowed to post events (known by the hash of its service token), or read from Kafka."""

    name: Name("source name")
    token_sha256: str | None = None
    rate_per_second: float = Field(default=1000, gt=0, le=1_000_000)
    burst: int = Field(default=2000, ge=1, le=1_000_000)
    kafka: KafkaSettings | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Source:
        if self.token_sha256 is None and self.kafka is None:
            raise ValueError(f"source {self.name} needs token_sha256 (it posts to POST /events) or kafka "
                             "(Lifeloop reads its topic)")
        return self

    @field_validator("token_sha256")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        if v is not None and not SHA256.match(v):
            raise ValueError("token_sha256 must be the SHA-256 of the token as 64 lower-case hex digits "
                             "(`lifeloop events token-hash TOKEN` prints it); never the token itself")
        return v


class _Moment(Strict):
    id: Name("moment id")
    scene: str = ""        # the scenario name strategies use for it (代发工资到账); the id always works too
    enabled: bool = True
    description: str = ""


class SalaryCredited(_Moment):
    """代发到账: a credit coded as salary (txn_type salary, or the payer's payroll code), at least ``min_amount``."""

    kind: Literal["salary_credited"]
    min_amount: float = Field(default=0, ge=0)


class LargeInflow(_Moment):
    """大额转入: the day's money in from outside (as the batch's ``inflow_today``) reaches ``amount``."""

    kind: Literal["large_inflow"]
    amount: float = Field(gt=0)


class LargeOutflow(_Moment):
    """大额转出 / 他行转账: the day's transfers and cash out to outside reach ``amount`` (to another bank only)."""

    kind: Literal["large_outflow"]
    amount: float = Field(gt=0)
    other_bank_only: bool = False


class LowBalance(_Moment):
    """余额低于: a posting leaves an account's balance below ``below`` (once per customer and day)."""

    kind: Literal["low_balance"]
    below: float = Field(gt=0)


class FirstCardSwipe(_Moment):
    """首刷: the first swipe of a card after its activation notice (once per card)."""

    kind: Literal["first_card_swipe"]


class ProductInterest(_Moment):
    """A product viewed ``views`` times within ``within_days`` days without a purchase of it (once a day)."""

    kind: Literal["product_interest"]
    views: int = Field(default=3, ge=1, le=1000)
    within_days: int = Field(default=7, ge=1, le=90)


class LongAbsenceLogin(_Moment):
    """A login after at least ``absent_days`` days without one (the customer had logged in before)."""

    kind: Literal["long_absence_login"]
    absent_days: int = Field(default=90, ge=1, le=3650)


class Maturity(_Moment):
    """到期前后: timers set by the daily batch from holdings, firing on maturity date + each offset (local date)."""

    kind: Literal["maturity"]
    offsets: list[int] = Field(default_factory=lambda: [-7, -1, 1], min_length=1)
    product_types: list[Literal["time_deposit", "wealth", "fund", "insurance"]] = Field(
        default_factory=lambda: ["time_deposit", "wealth"], min_length=1)

    @field_validator("offsets")
    @classmethod
    def _offsets(cls, v: list[int]) -> list[int]:
        if any(abs(o) > 90 for o in v) or len(set(v)) != len(v):
            raise ValueError("offsets are distinct days from the maturity date, between -90 and 90 (e.g. [-7, -1, 1])")
        return v


MomentSpec = Annotated[SalaryCredited | LargeInflow | LargeOutflow | LowBalance | FirstCardSwipe | ProductInterest
                       | LongAbsenceLogin | Maturity, Field(discriminator="kind")]


class EventsConfig(Strict):
    """The whole ``events.yaml``."""

    version: int = 1
    sources: list[Source] = Field(default_factory=list)
    reentry_hours: float = Field(default=24, ge=0, le=24 * 366)
    moments: list[MomentSpec] = Field(default_factory=list)

    @field_validator("moments")
    @classmethod
    def _unique(cls, v: list[MomentSpec]) -> list[MomentSpec]:
        ids = [m.id for m in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"moment id {dup[0]!r} is declared twice")
        return v

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[Source]) -> list[Source]:
        names = [s.name for s in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source {dup[0]!r} is declared twice")
        return v

    def moment(self, moment_id: str) -> MomentSpec | None:
        """The moment called ``moment_id``, if declared."""
        return next((m for m in self.moments if m.id == moment_id), None)
