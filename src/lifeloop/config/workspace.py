"""``lifeloop.yaml``: the workspace's own settings."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

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


# ids from bank data (customer, RM, branch, product, account) may only use these characters: they end up in
# file and folder names (exports, worklists), where "../" or a leading dot would be a path (docs/security.md)
DEFAULT_ID_PATTERN = r"[A-Za-z0-9_.\-]{1,64}"


class IngestSettings(Strict):
    """Guards of an ingest (``ingest:`` in lifeloop.yaml, docs/security.md)."""

    # widen with care: whatever the pattern, a "/", "\\", "..", a leading dot or a control character is refused
    id_pattern: str = DEFAULT_ID_PATTERN
    # folders besides SOURCE that a mapping's sources may name (relative: to the workspace); empty: only SOURCE
    source_folders: list[str] = Field(default_factory=list)

    @field_validator("id_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class AuditSettings(Strict):
    """The audit log's retention (``audit:`` in lifeloop.yaml): entries are kept at least this long."""

    # PCI DSS 10.7 (10.5.1 in v4.0): at least a year of audit history; CBIRC data rules ask the same
    retention_months: int = Field(default=12, ge=12, le=1200)


class IdentitySettings(Strict):
    """How users sign in and unmask (``identity:`` in lifeloop.yaml, docs/security.md "Principals and roles")."""

    # sign in as the OS user when it is mapped to an active Lifeloop user (`lifeloop users add --os-user`);
    # a bank that wants tokens only (LIFELOOP_USER + LIFELOOP_TOKEN) turns this off
    os_users: bool = True
    # the customers fields a relationship manager may unmask for one of their own customers, for a reason
    rm_unmask_fields: list[Literal["id_number", "name", "mobile", "email", "birth_date"]] = Field(
        default_factory=lambda: ["id_number"])
    # the longest an unmask grant may last
    max_unmask_minutes: int = Field(default=60, ge=1, le=24 * 60)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class OidcSettings(Strict):
    """The bank's identity provider for single sign-on (``web.oidc:`` in lifeloop.yaml, docs/web.md).

    OpenID Connect authorization-code flow with PKCE (S256); the ID token is checked against the provider's
    JWKS (RS256), issuer, audience, expiry and nonce. The user named by ``user_claim`` must be a Lifeloop user
    and gets Lifeloop's roles; the provider grants nothing. The client secret is read from the environment
    variable ``client_secret_env`` names, never from this file.
    """

    name: str = Field(min_length=1, max_length=64)            # shown on the button: "Sign in with <name>"
    issuer: str = Field(min_length=1, max_length=512)          # the discovery document is <issuer>/.well-known/...
    client_id: str = Field(min_length=1, max_length=256)
    client_secret_env: str = Field(default="LIFELOOP_OIDC_CLIENT_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    user_claim: str = Field(default="preferred_username", min_length=1, max_length=64)
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile"])
    # the callback URL registered at the provider; by default the app's own /sign-in/oidc/callback as reached
    redirect_uri: str | None = None
    token_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    leeway_seconds: int = Field(default=60, ge=0, le=300)      # clock skew allowed on exp / iat

    @field_validator("issuer", "redirect_uri")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return value
        url = urlsplit(value)
        if url.scheme == "https" or (url.scheme == "http" and url.hostname in LOOPBACK_HOSTS):
            return value.rstrip("/") if url.path.endswith("/") else value
        raise ValueError(f"{value!r} must be an https:// URL (plain http only on a loopback address)")

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("the scopes must include 'openid'")
        return value


class WebSettings(Strict):
    """The web app's sign-in (``web:`` in lifeloop.yaml, docs/web.md): idle timeout and lock-out.

    A session unused for ``idle_minutes`` is over (the user signs in again); ``max_failures`` wrong passwords
    in a row lock the user for ``lock_minutes`` (PCI DSS 8.3.4: at most 10 attempts, locked at least 30
    minutes or until an administrator unlocks; the defaults are stricter on attempts).
    """

    idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    max_failures: int = Field(default=5, ge=1, le=10)
    lock_minutes: int = Field(default=30, ge=1, le=24 * 60)
    oidc: OidcSettings | None = None     # single sign-on with the bank's identity provider; off when absent


class RightsSettings(Strict):
    """The customer's rights (``rights:`` in lifeloop.yaml): how long personal data stays after the relationship ends.

    ``lifeloop customers purge`` is refused until this many days have passed since the customer withdrew
    consent or left the bank's extract (PIPL Art. 47: deleted once the purpose is over and any retention
    the law sets has passed). The bank's own systems of record keep what anti-money-laundering rules ask;
    this is Lifeloop's copy.
    """

    purge_after_days: int = Field(default=180, ge=0, le=36500)


class LakeSettings(Strict):
    """Where the lake is and whether bank batches keep their C2 columns encrypted (``lake:`` in lifeloop.yaml).

    ``lake: lake`` (a folder only) is the form of workspaces made before encryption: plaintext batches. New
    workspaces say ``lake: {path: lake, encryption: on}``. Switching it off leaves encrypted batches readable.
    """

    path: str = "lake"
    encryption: bool = False
    # the customer index (lake/customer_index, docs/data-model.md), so a customer 360 or a worklist reads a few
    # row groups instead of the whole history: built by the web app for the newest batch when it finds none
    # ("serve"), also at the end of every ingest ("ingest": a bank's daily batch), or never ("off")
    customer_index: Literal["ingest", "serve", "off"] = "serve"

    @field_validator("customer_index", mode="before")
    @classmethod
    def _index_mode(cls, value: object) -> object:
        # YAML reads a bare on / off as a boolean
        return {True: "ingest", False: "off"}.get(value, value) if isinstance(value, bool) else value


class KeySettings(Strict):
    """Where the keys are (``keys:`` in lifeloop.yaml, docs/security.md "Encryption at rest").

    ``provider``: ``file`` (the embedded key file at ``path``, 0600) or ``python:module:Class``, the bank's
    KMS/HSM client, called with ``options``. ``keyring``: the workspace's wrapped data keys.
    """

    provider: str = "file"
    path: str = "keys/lifeloop.keys"
    keyring: str = "keys/keyring.json"
    options: dict[str, str | int | bool] = Field(default_factory=dict)

    @field_validator("provider")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != "file" and not (value.startswith("python:") and value.count(":") == 2):
            raise ValueError("use `file` (the embedded key file) or `python:package.module:ClassName` "
                             "(the bank's KMS client)")
        return value


class WorkspaceConfig(Strict):
    """The top-level ``lifeloop.yaml``."""

    bank: BankInfo = Field(default_factory=BankInfo)
    engine: Literal["duckdb", "spark"] = "duckdb"
    lake: LakeSettings = Field(default_factory=LakeSettings)
    keys: KeySettings = Field(default_factory=KeySettings)
    config_dir: str = "config"
    database_url: str | None = None
    spark: SparkSettings = Field(default_factory=SparkSettings)
    run: RunSettings = Field(default_factory=RunSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    rights: RightsSettings = Field(default_factory=RightsSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @field_validator("lake", mode="before")
    @classmethod
    def _lake_folder(cls, value: object) -> object:
        # `lake: lake` (a folder name) is the form of workspaces made before lake encryption
        return {"path": value} if isinstance(value, str) else value
