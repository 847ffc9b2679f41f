"""The one facade: the CLI, the API and notebooks all go through :class:`Context`."""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lifeloop import pipeline
from lifeloop.config.loader import ConfigFolder
from lifeloop.config.masking import masking_policy
from lifeloop.config.shelf import ModelsConfig
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.contract import Bank, StepResult
from lifeloop.data import ingest as ingesting
from lifeloop.data import simulator
from lifeloop.data.access import PermissionDenied, Principal, Scope, SignInRefused, not_visible, parse_grant
from lifeloop.data.access import describe as describe_principal
from lifeloop.data.masking import mask_money_text, show_value
from lifeloop.engine.adapters import connect
from lifeloop.errors import ConfigError, DataError, EventError, NotFoundError, did_you_mean
from lifeloop.execution import consent_changes, customer_rights, feedback_import, replies, worklists
from lifeloop.execution import dispatch as dispatching
from lifeloop.execution.bank_customers import BankCustomers
from lifeloop.execution.channels.files import write_table
from lifeloop.insight import profile, summary, transitions
from lifeloop.insight.money import workspace_money_tags
from lifeloop.models import evaluation as model_evaluation
from lifeloop.models import monitor as model_monitor
from lifeloop.models import registry as model_registry
from lifeloop.models import training as model_training
from lifeloop.realtime import decide as realtime_decide
from lifeloop.realtime import intake as event_intake
from lifeloop.realtime import kafka as event_kafka
from lifeloop.realtime import sources as event_sources
from lifeloop.realtime import timers as realtime_timers
from lifeloop.review import from_file, kpis, lake_evaluation
from lifeloop.settings import ENGINES, Credentials, Settings
from lifeloop.store import customer_index, rekey, run_log
from lifeloop.store import ops as ops_store
from lifeloop.store.keys import Keys, open_keys
from lifeloop.store.lake import BANK, Lake, run_hint
from lifeloop.store.lake_crypto import LakeCrypto
from lifeloop.store.ops import approvals as approving
from lifeloop.store.ops import audit, delivery, web_sessions
from lifeloop.store.ops import events as events_store
from lifeloop.store.ops import feedback as feedback_store
from lifeloop.store.ops import principals as users_store
from lifeloop.store.ops import tasks as tasks_store
from lifeloop.store.ops import threads as threads_store
from lifeloop.store.ops.database import resolve_url, unit_of_work
from lifeloop.store.ops.models import Dispatch, StrategyThread
from lifeloop.store.ops.types import utcnow
from lifeloop.strategy import editor as strategy_editor
from lifeloop.strategy import list_counts
from lifeloop.strategy import why as why_replay
from lifeloop.strategy.history import LakeHistory
from lifeloop.strategy.live import LiveStrategies
from lifeloop.strategy.ops_history import OpsHistory, WithRights
from lifeloop.workspace import init_workspace, load_workspace

if TYPE_CHECKING:
    import pyarrow as pa
    from pydantic import BaseModel
    from sqlalchemy.orm import Session, sessionmaker

    from lifeloop.config.events import EventsConfig
    from lifeloop.config.loader import LocatedYaml
    from lifeloop.config.workspace import WorkspaceConfig
    from lifeloop.review.evaluation import Evaluation
    from lifeloop.store.lake import Lake

M = TypeVar("M", bound="BaseModel")
JOIN_WAIT = 60.0   # seconds a Kafka consumer may wait for its partitions before its empty polls count as idle
UNMASKABLE = ("name", "mobile", "id_number", "email", "birth_date")   # customers fields an unmask grant may name


def _user_row(user: Any) -> dict[str, Any]:
    return {"user": user.id, "name": user.display_name, "active": user.active, "os_user": user.os_user,
            "roles": sorted(f"{g.role}={g.scope}" if g.scope else g.role for g in user.grants)}


# customer-level snapshots read through Context are filtered to the reader's scope (an RM: their book; a branch
# manager: their branch; head office: all), with the permission each needs
SCOPED_AREAS = {"lists": "lists.read", "audiences": "lists.read", "outcomes": "lists.read",
                "features": "customer.read", "lifecycle": "customer.read", "segments": "customer.read",
                "clusters": "customer.read", "scores": "customer.read"}


class Context:
    """A workspace opened for work by a principal: settings, configuration, the lake and an engine.

    ``principal``: who acts (a web app passes the user it authenticated; tests pass
    ``Principal.system("tests")``). Without one, the first action that needs it signs in with
    ``credentials`` (default: ``LIFELOOP_USER`` + ``LIFELOOP_TOKEN``, else the OS user if it is mapped to an
    active user and lifeloop.yaml's ``identity.os_users`` allows it); a refusal is :class:`SignInRefused`.
    ``clock`` (default: the real UTC time) dates sign-ins and unmask grants.
    """

    def __init__(self, workspace: str | Path | None = None, *, engine: str | None = None,
                 debug: bool | None = None, settings: Settings | None = None, principal: Principal | None = None,
                 credentials: Credentials | None = None, clock: Callable[[], dt.datetime] | None = None):
        self.settings = settings or Settings.from_env(workspace, engine, debug)
        self._engines: dict[str, Any] = {}
        self._configs: ConfigFolder | None = None
        self._ops: sessionmaker[Session] | None = None
        self._shared_ops = False   # acting_as: the operations database belongs to the context it came from
        self._principal = principal
        self._credentials = credentials
        self.clock = clock or utcnow
        self.bootstrap_token: str | None = None   # the first administrator's token, when init made one
        self._books: dict[str, Any] = {}          # who owns which customer, per bank batch (shared by acting_as)
        self._books_lock = threading.Lock()
        self._only_branch: str | None = None      # within_branch: scoped reads narrowed to one branch

    # ------------------------------------------------------------------ workspace
    @classmethod
    def init(cls, directory: str | Path, template: str = "bank", force: bool = False, **kwargs: Any) -> Context:
        """Create a workspace from a template and open it; with no user yet, the OS user who runs this becomes
        the first administrator (signing in as that OS user; ``bootstrap_token`` holds their token)."""

        init_workspace(directory, template, force)
        ctx = cls(directory, **kwargs)
        first = ctx.bootstrap_owner()
        ctx.bootstrap_token = first[1] if first else None
        ctx.__dict__.pop("config", None)     # nothing of lifeloop.yaml stays cached: it may be edited next
        return ctx

    def bootstrap_owner(self) -> tuple[str, str] | None:
        """With no user yet, make the OS user running this (the workspace's owner) its first administrator, mapped
        to that OS user; returns (user, one-time token), or None when users exist or the OS user is unknown."""
        me = (self._credentials or Credentials.from_env()).os_user
        if not me or self.user_count():
            return None
        name = me if users_store.USER_ID.fullmatch(me) else "owner"
        row, token = self.bootstrap_admin(name, os_user=me, display_name=f"workspace owner ({me})")
        return row["user"], token

    @property
    def workspace(self) -> Path:
        return self.settings.workspace

    @cached_property
    def config(self) -> WorkspaceConfig:
        """The validated ``lifeloop.yaml``."""

        return load_workspace(self.workspace)

    @property
    def config_dir(self) -> Path:
        return self.workspace / self.config.config_dir

    @cached_property
    def lake(self) -> Lake:
        """The lake; C2 columns encrypted as lifeloop.yaml's ``lake.encryption`` says, decrypted with :attr:`keys`."""
        return Lake(self.workspace / self.config.lake.path,
                    LakeCrypto(lambda: self.keys, encrypt=self.config.lake.encryption))

    @cached_property
    def keys(self) -> Keys:
        """The workspace's keys (lifeloop.yaml ``keys:``): the bank's key manager, data keys, the keyed hash."""
        k = self.config.keys
        return open_keys(self.workspace, k.provider, k.path, k.keyring, dict(k.options))

    @property
    def configs(self) -> ConfigFolder:
        """The workspace's config files, each loaded once into its strict model (the steps' config port); the strategy
        map is the live one: config/strategies.yaml with the approved versions over it (docs/strategies.md)."""
        if self._configs is None:
            self._configs = ConfigFolder(self.config_dir, self.workspace,
                                         overlays={"strategies": LiveStrategies(self.ops, self._ops_present)})
        return self._configs

    def _ops_present(self) -> bool:
        """Whether the operations database may hold anything: not a SQLite file that was never made."""
        url = self.database_url
        if url.startswith("sqlite:///") and self._ops is None:
            return Path(url.removeprefix("sqlite:///")).exists()
        return True

    @property
    def masking(self):
        """The masking policy in force: config/masking.yaml over the built-in roles (lifeloop.data.masking)."""
        return masking_policy(self.configs)

    def load_config(self, name: str, model: type[M]) -> tuple[M, LocatedYaml]:
        """Load ``config/<name>.yaml`` into a strict model (cached for this context)."""
        return self.configs.load(name, model)

    def config_hash(self, *names: str) -> str:
        """A short hash of the named config files' bytes (stamped on every snapshot)."""
        return self.configs.hash(*names)

    @property
    def bank(self) -> Bank:
        """The bank's name and time zone (lifeloop.yaml) and the workspace folder."""
        return Bank(self.config.bank.name, self.config.bank.timezone, self.workspace)

    def ports(self) -> pipeline.Ports:
        """What the daily steps may reach: the lake, the configs, engines, history, the ops database."""
        return pipeline.Ports(lake=self.lake, configs=self.configs, engine=self.engine, bank=self.bank,
                              history=self.history_source, ops=self.ops, settings=self.config.run,
                              operator=self.operator)

    # ------------------------------------------------------------------ engines
    @property
    def engine_name(self) -> str:
        return self.settings.engine or self.config.engine

    def engine(self, name: str | None = None):
        """The engine adapter (DuckDB by default, Spark on request), opened once per context."""

        name = name or self.engine_name
        if name not in ENGINES:
            raise ConfigError(f"unknown engine {name!r}", hint=f"choose one of: {', '.join(ENGINES)}")
        if name not in self._engines:

            self._engines[name] = connect(name, self)
        return self._engines[name]

    # ------------------------------------------------------------------ operations database
    @property
    def database_url(self) -> str:
        """The operations database: LIFELOOP_DATABASE_URL, else lifeloop.yaml's database_url, else ops.db here."""

        return resolve_url(self.workspace, setting=self.settings.database_url, configured=self.config.database_url)

    def ops(self) -> sessionmaker[Session]:
        """The operations database's session factory (SQLite is migrated on first use; PostgreSQL must be)."""
        if self._ops is None:

            self._ops = ops_store.open_ops(self.database_url, keys=lambda: self.keys)
        return self._ops

    def close(self) -> None:
        """Release engines (stops a local Spark session) and the operations database's connections."""
        for adapter in self._engines.values():
            adapter.close()
        self._engines.clear()
        if self._ops is not None and not self._shared_ops:
            self._ops.kw["bind"].dispose()
            self._ops = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the loop
    def ingest(self, source: str | Path, mapping: str | Path | None = None, as_of: dt.date | None = None,
               progress: bool = False, *, today: dt.date | None = None):
        """Read a bank's extracts, map, validate, and publish them atomically as one batch.

        Without ``as_of`` the inferred date must not be after ``today`` (default: the real date) nor far
        after the previous batch.
        """

        self.require("ingest", "ingest extracts")
        sessions = self.ops()   # reachable before anything is published: the batch is screened against it after
        report = ingesting.ingest(self, Path(source), Path(mapping) if mapping else None, as_of, progress=progress,
                                  today=today)
        # a purged person brought back by this batch is recognised by keyed hashes and kept out of marketing
        report.suppressed = customer_rights.screen_batch(self.lake, sessions, self.keys, report.as_of,
                                                         actor=self.operator)
        if self.config.lake.customer_index == "ingest" and not (
                report.unchanged and customer_index.usable(self.lake, report.as_of)):
            self.build_customer_index(report.as_of)
        return report

    def customer_index_missing(self) -> dt.date | None:
        """The newest bank batch's date when the customer index should be built for it and is not (or is stale)."""
        dates = self.lake.dates(BANK)
        if not dates or self.config.lake.customer_index == "off" or customer_index.usable(self.lake, dates[-1]):
            return None
        return dates[-1]

    def build_customer_index(self, as_of: dt.date | None = None) -> dict[str, Any]:
        """Publish the customer index (客户索引) of the bank's tables as of a date (default: the newest batch), so a
        customer 360 and a worklist read a few row groups, not the whole history (lifeloop.store.customer_index)."""
        self.require("ingest", "build the customer index")
        dates = self.lake.dates(BANK)
        if not dates:
            raise DataError("no bank data has been ingested yet", hint=run_hint(BANK))
        engine = connect("duckdb", self)   # its own: the views it registers must not replace a step's
        try:
            return customer_index.build(self.lake, engine, as_of or dates[-1])
        finally:
            engine.close()

    def run(self, as_of: dt.date, steps: list[str] | None = None, engine: str | Any | None = None, *,
            replan_reason: str | None = None) -> list[StepResult]:
        """Run daily steps for one as-of date (re-planning a dispatched day needs a reason, which is audited)."""
        self.require("run", "run the daily steps")
        replan = pipeline.Replan(replan_reason, self.operator) if replan_reason else None
        return pipeline.run_steps(self.ports(), as_of, steps, engine, replan)

    @property
    def operator(self) -> str:
        """Who is acting: the signed-in principal's user id (named on every audit entry, consent change, approval)."""
        return self.principal.user_id

    # ------------------------------------------------------------------ principals (who may do what)
    @property
    def principal(self) -> Principal:
        """The principal acting through this context; signs in on first use (see the class docstring)."""
        if self._principal is None:
            self._principal = self.sign_in(self._credentials or Credentials.from_env())
        return self._principal

    def sign_in(self, credentials: Credentials) -> Principal:
        """Authenticate against the users table; audited good or bad. Any failure is the same refusal (exit 2)."""
        with unit_of_work(self.ops()) as session:
            found = users_store.sign_in(session, user_id=credentials.user, token=credentials.token,
                                        os_user=credentials.os_user, allow_os_users=self.config.identity.os_users,
                                        now=self.clock())
        if found is None:
            raise SignInRefused(
                "sign-in refused: no active Lifeloop user matches these credentials",
                hint="set LIFELOOP_USER and LIFELOOP_TOKEN (the token `lifeloop users add` printed)"
                     + (", or run as an OS user an administrator mapped (`lifeloop users add NAME --role ROLE "
                        "--os-user OSNAME`)" if self.config.identity.os_users else "")
                     + "; docs/security.md, 'Principals and roles'")
        self._principal = found
        return found

    def require(self, permission: str, what: str | None = None) -> Principal:
        """The principal, refused (:class:`PermissionDenied`) unless a role of theirs holds ``permission``."""
        principal = self.principal
        if not principal.can(permission):
            try:
                principal.require(permission, what)
            except PermissionDenied as exc:
                raise self._refused(exc, permission) from None
        return principal

    def _refused(self, error: Exception, permission: str, target_type: str | None = None,
                 target_id: str | None = None) -> Exception:
        """Audit a refused attempt (result ``refused``: the permission, and what was asked for) and return the
        error to raise. A customer out of scope and one that does not exist are audited alike."""
        with unit_of_work(self.ops()) as session:
            audit.record(session, actor=self.principal.user_id, action="access.refused", target_type=target_type,
                         target_id=target_id, at=self.clock(), result="refused",
                         details={"permission": permission, "roles": [str(g) for g in self.principal.grants]})
        return error

    def whoami(self) -> dict[str, Any]:
        """The signed-in user: id, name, how they signed in, roles with their branch or book, permissions."""
        return describe_principal(self.principal)

    def user_count(self) -> int:
        with self.ops()() as session:
            return users_store.count_users(session)

    def bootstrap_admin(self, name: str, *, os_user: str, display_name: str | None = None,
                        roles: Sequence[str] = ("admin",)) -> tuple[dict[str, Any], str]:
        """The first user of a workspace, by its owner: allowed only while no user exists, with the admin role,
        mapped to the OS user running this, who owns lifeloop.yaml. Returns the user and their one-time token."""
        import os

        grants = [parse_grant(r) for r in roles]
        me = (self._credentials or Credentials.from_env()).os_user
        problems = []
        if not any(g.role == "admin" for g in grants):
            problems.append("the first user must hold the admin role (--role admin)")
        if os_user != me:
            problems.append(f"the first user must be mapped to the OS user running this (--os-user {me})")
        path = self.workspace / "lifeloop.yaml"
        if hasattr(os, "geteuid") and path.exists() and path.stat().st_uid != os.geteuid():
            problems.append(f"only the owner of {path} may create the first user")
        with unit_of_work(self.ops()) as session:
            if users_store.count_users(session):
                raise PermissionDenied("users exist already: only an administrator adds users",
                                       hint="sign in as an administrator (`lifeloop whoami`)")
            if problems:
                raise PermissionDenied("cannot create the first user: " + "; ".join(problems),
                                       hint=f"lifeloop users add NAME --role admin --os-user {me}")
            user, token = users_store.add_user(session, user_id=name, display_name=display_name, grants=grants,
                                               os_user=os_user, actor=name, now=self.clock(),
                                               details={"bootstrap": True, "by_os_user": me})
            if self._principal is None:   # the owner, who just proved who they are, acts as the new user
                self._principal = users_store.principal_of(user, "os_user")
            return _user_row(user), token

    def add_user(self, name: str, *, roles: Sequence[str], display_name: str | None = None,
                 os_user: str | None = None) -> tuple[dict[str, Any], str]:
        """Create a user (administrators only; audited). Returns the user and their one-time token."""
        grants = [parse_grant(r) for r in roles]
        actor = self.require("users.manage", "manage users").user_id
        with unit_of_work(self.ops()) as session:
            user, token = users_store.add_user(session, user_id=name, display_name=display_name, grants=grants,
                                               os_user=os_user, actor=actor, now=self.clock())
            return _user_row(user), token

    def grant_role(self, name: str, role: str) -> dict[str, Any]:
        """Give a user a role (``rm=RM001``, ``branch_manager=B01``, ``approver`` ...); administrators only."""
        grant = parse_grant(role)
        actor = self.require("users.manage", "manage users").user_id
        with unit_of_work(self.ops()) as session:
            return _user_row(users_store.grant_role(session, user_id=name, grant=grant, actor=actor,
                                                    now=self.clock()))

    def revoke_role(self, name: str, role: str) -> dict[str, Any]:
        """Take a role away from a user; administrators only (the last administrator keeps theirs)."""
        grant = parse_grant(role)
        actor = self.require("users.manage", "manage users").user_id
        with unit_of_work(self.ops()) as session:
            return _user_row(users_store.revoke_role(session, user_id=name, grant=grant, actor=actor,
                                                     now=self.clock()))

    def disable_user(self, name: str) -> dict[str, Any]:
        """Stop a user signing in (kept for the audit log); administrators only."""
        actor = self.require("users.manage", "manage users").user_id
        with unit_of_work(self.ops()) as session:
            return _user_row(users_store.disable_user(session, user_id=name, actor=actor, now=self.clock()))

    def reset_token(self, name: str) -> str:
        """A new token for a user (the old one stops working); administrators only. Shown once."""
        actor = self.require("users.manage", "manage users").user_id
        with unit_of_work(self.ops()) as session:
            return users_store.reset_token(session, user_id=name, actor=actor, now=self.clock())

    def set_password(self, name: str, password: str) -> dict[str, Any]:
        """Set a user's web password (argon2id hash; their web sessions end, a lock-out is lifted): an administrator
        for anyone, a user for themselves; audited, never the password."""
        web_sessions.check_password(password)
        principal = self.principal
        if principal.user_id != name:
            self.require("users.manage", "set another user's password")
        with unit_of_work(self.ops()) as session:
            return _user_row(web_sessions.set_password(session, user_id=name, password=password,
                                                       actor=principal.user_id, now=self.clock()))

    # ---------------------------------------------------------------- the web app's sessions (docs/web.md)
    def web_sign_in(self, name: str, password: str, *, client: str | None = None) -> tuple[Principal, str] | None:
        """Check a user name and password (lock-out per lifeloop.yaml ``web:``) and open a web session: the
        principal and the session id, or None (one refusal for every failure); audited either way."""
        web = self.config.web
        with unit_of_work(self.ops()) as session:
            found = web_sessions.password_sign_in(session, user_id=name, password=password, client=client,
                                                  lockout=web_sessions.Lockout(web.max_failures, web.lock_minutes),
                                                  now=self.clock())
            return None if found is None else (found, web_sessions.open_session(session, user_id=found.user_id,
                                                                                now=self.clock()))

    def web_sign_in_oidc(self, name: str, *, issuer: str, client: str | None = None) -> tuple[Principal, str] | None:
        """Open a web session for a user the identity provider vouched for (lifeloop.yaml ``web.oidc``; the ID
        token already checked): the principal and the session id, or None when Lifeloop does not know the user or
        they are disabled or locked; audited either way."""
        with unit_of_work(self.ops()) as session:
            found = web_sessions.oidc_sign_in(session, user_id=name, issuer=issuer, client=client, now=self.clock())
            return None if found is None else (found, web_sessions.open_session(session, user_id=found.user_id,
                                                                                now=self.clock()))

    def web_sign_in_refused(self, why: str, *, issuer: str, client: str | None = None) -> None:
        """Audit a single sign-on refused before any user was known (state, code, token checks)."""
        with unit_of_work(self.ops()) as session:
            web_sessions.oidc_refused(session, why=why, issuer=issuer, client=client, now=self.clock())

    def web_session(self, session_id: str) -> Principal | None:
        """The principal of a live web session (idle timeout: lifeloop.yaml ``web.idle_minutes``), or None."""
        idle = dt.timedelta(minutes=self.config.web.idle_minutes)
        with unit_of_work(self.ops()) as session:
            return web_sessions.resume(session, session_id=session_id, idle=idle, now=self.clock())

    def web_sign_out(self, session_id: str) -> bool:
        """Revoke a web session (audited in the principal's name)."""
        with unit_of_work(self.ops()) as session:
            return web_sessions.close_session(session, session_id=session_id, actor=self.operator, now=self.clock())

    def acting_as(self, principal: Principal) -> Context:
        """This workspace (settings, configuration, lake, operations database) for another principal: the web app
        makes one per request. Close it to release its engines; the operations database stays with this one."""
        other = Context(settings=self.settings, principal=principal, clock=self.clock)
        other._configs = self.configs
        other._ops = self.ops()
        other._shared_ops = True
        other._books, other._books_lock = self._books, self._books_lock
        for name in ("config", "lake", "keys"):
            if name in self.__dict__:
                other.__dict__[name] = self.__dict__[name]
        return other

    def users(self) -> list[dict[str, Any]]:
        """Every user and their roles; administrators only."""
        self.require("users.manage", "list users")
        with self.ops()() as session:
            return users_store.list_users(session)

    # ---------------------------------------------------------------- scopes (whose customers)
    @cached_property
    def _book(self) -> BankCustomers:
        """Who owns which customer, read once per bank batch and shared by the Contexts of one workspace (the web
        app makes one per request: re-reading a million owners each time would cost a second a page)."""
        dates = self.lake.dates(BANK)
        key = (dates[-1], tuple(customer_index.bank_runs(self.lake, dates[-1]).items())) if dates else None
        with self._books_lock:
            hit = self._books.get("owners")
            if hit is not None and hit[0] == key:
                return hit[1]
        book = BankCustomers(self.lake)
        with self._books_lock:
            self._books["owners"] = (key, book)
        return book

    def _scope(self, permission: str, what: str) -> Scope:
        return self.require(permission, what).scope(permission)

    def _visible_customers(self, scope: Scope) -> list[str]:
        return sorted(c for c, (rm, branch) in self._book.owners.items() if scope.covers(rm, branch))

    def _check_customer(self, customer_id: str, permission: str, what: str) -> tuple[str | None, str | None]:
        """(rm_id, branch_id) of a customer the principal may reach with ``permission``; else the one refusal
        that an unknown customer gets too."""
        scope = self._scope(permission, what)
        owner = self._book.owners.get(customer_id)
        if scope.all:
            return owner or (None, None)
        if owner is None or not scope.covers(*owner):
            raise self._refused(not_visible("customer", customer_id, self._visible_customers(scope)), permission,
                                "customer", customer_id)
        return owner

    def _scoped(self, table: pa.Table, permission: str, what: str) -> pa.Table:
        """Only the rows of customers inside the principal's scope."""
        import pyarrow as pa
        import pyarrow.compute as pc

        scope = self._scope(permission, what)
        if self._only_branch is not None:
            scope = Scope(rm_ids=frozenset(), branch_ids=frozenset({self._only_branch}) if scope.all or
                          self._only_branch in scope.branch_ids else frozenset())
        if scope.all:
            return table
        return table.filter(pc.is_in(table["customer_id"], value_set=pa.array(self._visible_customers(scope),
                                                                              pa.string())))

    def board_branches(self) -> list[str]:
        """The branches whose board a reader may choose: every branch for head office, a branch manager's own."""
        scope = self._scope("board.read", "read the strategy board")
        every = sorted({b for b in self._book.rm_branches.values() if b} |
                       {b for _, b in self._book.owners.values() if b})
        return every if scope.all else sorted(b for b in every if b in scope.branch_ids)

    def within_branch(self, branch_id: str | None) -> Context:
        """This workspace for the same principal with every scoped read narrowed to one branch's customers (the
        board's branch filter, 一行一策). A branch the reader may not choose is refused as an unknown one."""
        if not branch_id:
            return self
        visible = self.board_branches()
        if branch_id not in visible:
            raise self._refused(not_visible("branch", branch_id, visible), "board.read", "branch", branch_id)
        other = self.acting_as(self.principal)
        other._only_branch = branch_id
        return other

    def export_xlsx(self, kind: str, columns: Sequence[str], rows: list[dict[str, Any]], *,
                    filters: dict[str, Any]) -> tuple[str, bytes]:
        """An Excel file of a board view the reader already sees (``board`` or ``daily_sales``): (file name, bytes).

        The rows hold no customer's personal data (strategies, branches, RMs, counts and money); the export is
        audited like a worklist export: ``<kind>.export`` with the file's name, sha256, rows and filters."""
        import hashlib
        import tempfile

        principal = self.require("board.export", "export the strategy board")
        name = f"{kind.replace('_', '-')}-{self.clock().date().isoformat()}.xlsx"
        with tempfile.TemporaryDirectory() as tmp:
            path = write_table([{c: r.get(c) for c in columns} for r in rows], columns, Path(tmp) / name,
                                         "xlsx", sheet=kind)
            data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        with unit_of_work(self.ops()) as session:
            audit.record(session, actor=principal.user_id, action=f"{kind}.export", target_type="board",
                         target_id=kind, at=self.clock(),
                         details={"file": name, "sha256": digest, "rows": len(rows),
                                  "filters": {k: v for k, v in filters.items() if v}})
        return name, data

    # ------------------------------------------------------------------ keys
    def rotate_keys(self, reason: str | None = None) -> rekey.Rekeyed:
        """A new master-key version; data keys re-wrapped, encrypted bank batches rewritten under it; audited."""
        self.require("keys.manage", "rotate keys")
        return rekey.rotate(self.keys, self.lake, self.ops(), actor=self.operator, reason=reason)

    def reencrypt(self, *, new_data_key: bool = False, reason: str | None = None) -> rekey.Rekeyed:
        """Operations rows under the newest data key, plaintext rows and batches encrypted; audited."""
        self.require("keys.manage", "re-encrypt")
        return rekey.reencrypt_all(self.keys, self.lake, self.ops(), actor=self.operator, new_data_key=new_data_key,
                                   reason=reason)

    # ------------------------------------------------------------------ the audit log
    def audit_verify(self) -> audit.Verification:
        """Walk the audit log's hash chain; the result names every edited, deleted, inserted or reordered entry."""
        self.require("audit.read", "verify the audit log")
        with self.ops()() as session:
            return audit.verify(session)

    def audit_export(self, start: dt.date, end: dt.date, out: str | Path) -> audit.Export:
        """Export the audit entries of ``start``..``end`` (bank-local dates, inclusive) as CSV or JSONL; audited."""
        self.require("audit.export", "export the audit log")
        with unit_of_work(self.ops()) as session:
            return audit.export(session, start=self._local_midnight(start),
                                end=self._local_midnight(end + dt.timedelta(days=1)), out=Path(out),
                                actor=self.operator)

    def audit_prune(self, before: dt.date, archive: str | Path) -> audit.Pruned:
        """Delete audit entries written before ``before`` (past the retention) that ``archive`` holds; audited."""
        self.require("audit.prune", "prune the audit log")
        with unit_of_work(self.ops()) as session:
            return audit.prune(session, before=self._local_midnight(before), archive=Path(archive),
                               actor=self.operator, retention_months=self.config.audit.retention_months)

    def _local_midnight(self, day: dt.date) -> dt.datetime:
        from zoneinfo import ZoneInfo

        return dt.datetime.combine(day, dt.time(), ZoneInfo(self.config.bank.timezone)).astimezone(dt.UTC)

    def features(self, as_of: dt.date | None = None) -> pa.Table:
        """The published feature snapshot (标签) as of a date (default: the latest)."""
        return self.snapshot("features", as_of)

    def lifecycle(self, as_of: dt.date | None = None) -> pa.Table:
        """The published lifecycle snapshot (stage, rule, previous stage, days in stage) as of a date."""
        return self.snapshot("lifecycle", as_of)

    def segments(self, as_of: dt.date | None = None) -> pa.Table:
        """The published segments snapshot (tier, seg_<group>, micro_<name>) as of a date."""
        return self.snapshot("segments", as_of)

    def clusters(self, as_of: dt.date | None = None) -> pa.Table:
        """The published clusters snapshot (cluster_id, cluster_name, distance) as of a date."""
        return self.snapshot("clusters", as_of)

    def customer(self, customer_id: str, *, as_of: dt.date | None = None, transactions: int = 20) -> dict[str, Any]:
        """The customer profile (客户档案) as data, for a customer in the principal's scope, masked for their role;
        fields of an unexpired unmask grant come unmasked, and that view is audited."""
        rm_id, branch_id = self._check_customer(customer_id, "customer.read", "read customer profiles")
        principal, now = self.principal, self.clock()
        with self.ops()() as session:
            fields = users_store.unmasked_fields(session, user_id=principal.user_id, customer_id=customer_id, now=now)
        viewer = principal.viewer(rm_id, branch_id, fields, self.masking)
        access = {"user": principal.user_id, "roles": [str(g) for g in principal.grants], "unmasked": fields}
        result = profile.customer_profile(self, customer_id, viewer=viewer, as_of=as_of, transactions=transactions,
                                          access=access)
        if fields:
            with unit_of_work(self.ops()) as session:
                audit.record(session, actor=principal.user_id, action="customer.view_unmasked", at=now,
                             target_type="customer", target_id=customer_id, details={"fields": fields})
        return result

    def unmask(self, customer_id: str, *, reason: str, fields: Sequence[str] | None = None,
               minutes: int = 15) -> dict[str, Any]:
        """Let the principal see some personal fields of one customer unmasked for ``minutes``, for a reason.

        Compliance and administrators: any customers field; a relationship manager: only the fields
        ``identity.rm_unmask_fields`` allows (the ID number), of their own customers. Recorded in the
        operations database and on the audit log (who, whom, which fields, why, until).
        """
        principal = self.require("customer.unmask", "unmask personal data")
        identity = self.config.identity
        head_office = principal.roles & {"admin", "compliance"}
        allowed = list(UNMASKABLE) if head_office else list(identity.rm_unmask_fields)
        wanted = list(dict.fromkeys(f.strip() for f in (fields or allowed) if f.strip()))
        problems = []
        if not (reason or "").strip():
            problems.append("say why (a complaint or case number): --reason TEXT")
        unknown = [f for f in wanted if f not in UNMASKABLE]
        if unknown:
            problems.append(f"unknown field(s) {', '.join(unknown)}; unmaskable: {', '.join(UNMASKABLE)}")
        elif not set(wanted) <= set(allowed):
            problems.append(f"your roles may unmask only {', '.join(allowed) or 'nothing'}")
        if not 1 <= minutes <= identity.max_unmask_minutes:
            problems.append(f"--minutes must be 1..{identity.max_unmask_minutes} (identity.max_unmask_minutes)")
        if problems:
            raise PermissionDenied(f"cannot unmask customer {customer_id}: " + "; ".join(problems),
                                   hint='e.g. lifeloop unmask C000000042 --reason "complaint 2024-117" '
                                        "--fields id_number --minutes 15")
        # an RM reaches only their book (the unmask scope), head office every customer who exists
        scope = principal.scope("customer.unmask")
        owner = self._book.owners.get(customer_id)
        if owner is None or not scope.covers(*owner):
            raise self._refused(not_visible("customer", customer_id, self._visible_customers(scope) if not scope.all
                                            else list(self._book.owners)), "customer.unmask", "customer", customer_id)
        with unit_of_work(self.ops()) as session:
            row = users_store.grant_unmask(session, principal=principal, customer_id=customer_id, fields=wanted,
                                           reason=reason.strip(), minutes=minutes, now=self.clock())
            return {"customer_id": customer_id, "fields": wanted, "reason": row.reason, "until": row.expires_at,
                    "user": principal.user_id}

    def audiences(self, as_of: dt.date | None = None) -> pa.Table:
        """Eligible customers per strategy and wave, with the reason (定名单); only customers in the reader's scope."""
        return self.snapshot("audiences", as_of)

    def lists(self, as_of: dt.date | None = None) -> pa.Table:
        """The day's lists: treated, control and dropped candidates, with channel, script and dropping policy;
        only customers in the reader's scope."""
        return self.snapshot("lists", as_of)

    def evaluate(self, strategies: Sequence[str] = (), *, as_of: dt.date | None = None,
                 interim: bool = False) -> dict[str, Any]:
        """Post-evaluation of the strategies from the lake's outcomes (策略后评估; lifeloop.review/1 JSON)."""

        return lake_evaluation.evaluate_lake(self, as_of, strategies, interim)

    def evaluate_file(self, path: str | Path, *, arm: str, control: str, outcomes: Sequence[str] = (),
                      money: Sequence[str] = (), pre: str | None = None, cost_per_contact: float | None = None,
                      holdout: float | None = None, min_per_arm: int | None = None,
                      encoding: str = "utf-8") -> Evaluation:
        """Evaluate a campaign run outside Lifeloop from a file, one row per customer (策略后评估)."""

        return from_file.evaluate_file(Path(path), arm=arm, control=control, outcomes=list(outcomes), money=list(money),
                             pre=pre, cost_per_contact=cost_per_contact, holdout=holdout,
                             min_per_arm=from_file.MIN_PER_ARM if min_per_arm is None else min_per_arm,
                             encoding=encoding)

    def dispatch(self, as_of: dt.date, *, drain: bool = True):
        """Put the day's lists in the outbox and send what is due through the configured channels (策略执行)."""
        self.require("dispatch", "dispatch the day's lists")

        return dispatching.dispatch(dispatching.Surroundings(self.lake, self.configs, self.ops, self.bank), as_of,
                                   drain_outbox=drain, operator=self.operator)

    def outbox_unknown(self, channel: str | None = None) -> list[delivery.UnknownItem]:
        """Contacts whose delivery is unknown (the provider does not de-duplicate), oldest first, with reason and
        age."""
        self.require("outbox.resolve", "list contacts of unknown outcome")

        with self.ops()() as session:
            return delivery.unknown_items(session, now=utcnow(), channel=channel)

    def resolve_unknown(self, key: str, outcome: delivery.Resolution, reason: str, *, resend: bool = False) -> Dispatch:
        """Record an operator's decision on a contact of unknown outcome: sent, or not sent (audited)."""
        self.require("outbox.resolve", "resolve contacts of unknown outcome")

        with unit_of_work(self.ops()) as session:
            return delivery.resolve(session, key=key, outcome=outcome, reason=reason, actor=self.operator,
                                    resend=resend)

    def worklist(self, rm_id: str | None = None, on: dt.date | None = None, *, customer_id: str | None = None
                 ) -> list[dict[str, Any]]:
        """A relationship manager's open tasks, own customers only, most important first, with scripts.

        Without ``rm_id``: the signed-in RM's own worklist. Another RM's only for a branch manager of that RM's
        branch or head office; asking for one outside that gets the refusal an unknown RM id gets. Personal
        fields are masked for the viewer (an RM and their branch manager: as the rm role; head office: masked).
        ``customer_id``: only the tasks for that customer (the customer page's marketing forms).
        """
        principal = self.require("worklist.read", "read worklists")
        rm_id = self._worklist_rm(principal, rm_id)
        scope = principal.scope("worklist.read")
        viewer = principal.viewer(rm_id, self._book.rm_branches.get(rm_id), policy=self.masking)
        return worklists.worklist(self.ops(), rm_id, lake=self.lake, on=on, viewer=viewer,
                                  known=None if scope.all else self._visible_rms(scope), customer_id=customer_id)

    def _visible_rms(self, scope: Scope) -> list[str]:
        branches = self._book.rm_branches
        return sorted(set(scope.rm_ids) | {rm for rm, b in branches.items() if b in scope.branch_ids})

    def _worklist_rm(self, principal: Principal, rm_id: str | None) -> str:
        if rm_id is None:
            own = principal.rm_ids
            if len(own) != 1:
                raise NotFoundError("say whose worklist: " + (f"you hold the books of {', '.join(own)}" if own else
                                                              f"user {principal.user_id} is not a relationship "
                                                              "manager"),
                                    hint="lifeloop worklist RM_ID (head office and branch managers name the RM)")
            return own[0]
        scope = principal.scope("worklist.read")
        if not scope.all and rm_id not in self._visible_rms(scope):
            raise self._refused(not_visible("relationship manager", rm_id, self._visible_rms(scope)), "worklist.read",
                                "rm", rm_id)
        return rm_id

    def export_worklist(self, path: str | Path, rm_id: str | None = None, on: dt.date | None = None
                        ) -> dict[str, Any]:
        """Write a worklist to a .csv or .xlsx file, scoped and masked like :meth:`worklist`; audited with the
        file's name, sha256 and rows, and whose worklist it is."""
        import hashlib

        principal = self.require("worklist.export", "export worklists")
        rm_id = self._worklist_rm(principal, rm_id)
        rows = self.worklist(rm_id, on)
        written = worklists.export_worklist(rows, path, rm_id=rm_id, on=on)
        digest = hashlib.sha256(written.read_bytes()).hexdigest()
        with unit_of_work(self.ops()) as session:
            audit.record(session, actor=principal.user_id, action="worklist.export", target_type="rm",
                         target_id=rm_id, at=self.clock(),
                         details={"file": written.name, "sha256": digest, "rows": len(rows),
                                  "masked_as": principal.viewer(rm_id, self._book.rm_branches.get(rm_id),
                                                                policy=self.masking).name})
        return {"path": written, "sha256": digest, "rows": len(rows), "rm_id": rm_id}

    def record_outcome(self, task_id: int, *, outcome: str, note: str | None = None,
                       referred_name: str | None = None, referred_mobile: str | None = None,
                       referred_rm: str | None = None, product_line: str | None = None) -> dict[str, Any]:
        """The marketing form (营销表单) of one task of the signed-in RM's own worklist: the contact's outcome (a
        refusal goes into the refusal memory the contact gate reads), a referral's lead, a note; the task is done.

        A referral (转介) may name another product line (one of the bank's product types) and another RM of the
        task's branch, whose leads it then joins; an RM outside the branch gets the refusal of an unknown one.
        Another RM's task and a task that does not exist get the same refusal."""
        principal = self.require("feedback.record", "record contact outcomes")
        now = self.clock()
        referred_rm, product_line = (referred_rm or "").strip() or None, (product_line or "").strip() or None
        with unit_of_work(self.ops()) as session:
            task = tasks_store.own_task(session, rm_ids=principal.rm_ids, task_id=task_id)
            if task is None or task.dispatch_id is None:
                raise self._refused(not_visible("task", str(task_id)), "feedback.record", "task", str(task_id))
            if (referred_rm or product_line) and outcome != "referral":
                raise DataError(f"only a referral names a product line or an RM to refer to, not {outcome!r}",
                                hint="choose the referral outcome, or leave the referral fields empty")
            if referred_rm is not None:
                branches = self._book.rm_branches
                colleagues = sorted(rm for rm, b in branches.items() if b == branches.get(task.rm_id))
                if referred_rm not in colleagues:
                    raise self._refused(not_visible("relationship manager", referred_rm, colleagues),
                                        "feedback.record", "rm", referred_rm)
            lines = self._book_product_lines()
            if product_line is not None and lines and product_line not in lines:
                raise NotFoundError(f"no product line {product_line!r}" + did_you_mean(product_line, lines),
                                    hint=f"product lines: {', '.join(lines)}")
            referral = (feedback_store.Referral(referred_name.strip(), (referred_mobile or "").strip() or None,
                                                rm_id=referred_rm, product_line=product_line)
                        if outcome == "referral" and (referred_name or "").strip() else None)
            item = feedback_store.record(session, dispatch_id=task.dispatch_id, outcome=outcome, occurred_at=now,
                                         recorded_by=principal.user_id, note=(note or "").strip() or None,
                                         referral=referral, source="web", source_ref=f"task:{task.id}")
            if task.status in tasks_store.OPEN:
                tasks_store.complete_task(session, rm_id=task.rm_id, task_id=task.id, note=item.note, at=now)
            audit.record(session, actor=principal.user_id, action="feedback.record", target_type="customer",
                         target_id=task.customer_id, at=now,
                         details={"task": task.id, "contact": task.dispatch_id, "outcome": outcome,
                                  **({"referred_to_rm": referral.rm_id or task.rm_id,
                                      "product_line": product_line} if referral else {})})
            return {"feedback_id": item.id, "task_id": task.id, "contact_id": task.dispatch_id,
                    "customer_id": task.customer_id, "outcome": outcome}

    def _book_product_lines(self) -> list[str]:
        """The bank's product lines: the product types of the newest products extract (none: any is taken)."""
        files = self.lake.bank_files(self.lake.dates("bank")[-1]).get("products") if self.lake.dates("bank") else None
        if not files:
            return []
        types = self.lake.read_table(files[-1], ["product_type"])["product_type"].to_pylist()
        return sorted({t for t in types if t})

    def product_lines(self) -> list[str]:
        """The product lines a referral may name (for the marketing form)."""
        self.require("feedback.record", "record contact outcomes")
        return self._book_product_lines()

    def leads(self, rm_id: str | None = None) -> list[dict[str, Any]]:
        """An RM's open leads — people referred to them (转介), by their customers or by a colleague's — newest
        first; scoped like :meth:`worklist` (an RM: their own; a branch manager or head office names the RM), the
        name and mobile masked for the viewer."""
        principal = self.require("worklist.read", "read leads")
        rm_id = self._worklist_rm(principal, rm_id)
        if rm_id not in self._book.rm_branches:   # head office naming an RM the bank does not have
            raise self._refused(not_visible("relationship manager", rm_id), "worklist.read", "rm", rm_id)
        viewer = principal.viewer(rm_id, self._book.rm_branches.get(rm_id), policy=self.masking)
        owners = self._book.owners
        with self.ops()() as session:   # the referring customer is named only to their own RM's book
            return [{"id": lead.id, "name": show_value("name", lead.name, viewer),
                     "mobile": show_value("mobile", lead.phone, viewer) if lead.phone else None,
                     "product_line": lead.product_line,
                     "referred_by_customer_id": lead.referred_by_customer_id if (owners.get(
                         lead.referred_by_customer_id or "") or (None,))[0] == rm_id else None,
                     "status": lead.status, "created_at": lead.created_at}
                    for lead in feedback_store.leads_of(session, rm_id=rm_id)]

    def import_feedback(self, path: str | Path):
        """Import a feedback CSV (营销表单) all or nothing; re-importing the same file changes nothing."""
        self.require("feedback.import", "import feedback")

        return feedback_import.import_feedback(self.ops(), Path(path), timezone=self.config.bank.timezone)

    # ------------------------------------------------------------------ consent and approvals
    def _channels(self):
        return dispatching.channels_config(dispatching.Surroundings(self.lake, self.configs, self.ops, self.bank))

    def change_consent(self, customer_id: str, *, granted: bool, channel: str, purpose: str, source: str,
                       reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """Withdraw or grant consent at once (channel ``all``: every channel), audited in the operator's name.

        A relationship manager changes their own customers' consent only; compliance and administrators any."""
        if not self.require("consent.change", "change consent").scope("consent.change").all:
            self._check_customer(customer_id, "consent.change", "change consent")
        return consent_changes.change(self.ops(), BankCustomers(self.lake), customer_id=customer_id, granted=granted,
                                      channel=channel, purpose=purpose, source=source, reason=reason,
                                      actor=self.operator, now=now)

    def consent(self, customer_id: str, at: dt.datetime | None = None) -> dict[str, Any]:
        """A customer's permissions per purpose and channel now, with why, and their consent history (in scope)."""
        self._check_customer(customer_id, "consent.read", "read consent")
        return consent_changes.show(self.ops(), BankCustomers(self.lake), customer_id, at=at)

    def import_consent(self, path: str | Path, now: dt.datetime | None = None):
        """Import a CSV of consent changes all or nothing; re-importing the same file changes nothing."""
        self.require("consent.import", "import consent changes")
        return consent_changes.import_changes(self.ops(), BankCustomers(self.lake), Path(path), actor=self.operator,
                                              timezone=self.config.bank.timezone, now=now)

    def record_replies(self, path: str | Path | None = None, *, body: bytes | str | dict[str, Any] | None = None,
                       now: dt.datetime | None = None) -> replies.Recorded:
        """Inbound replies from a file (or one webhook body): opt-outs applied at once, the rest kept for review."""
        self.require("replies.record", "record replies")
        timezone = self.config.bank.timezone
        items = ([replies.parse_webhook(body, timezone=timezone)] if body is not None
                 else replies.read_file(Path(path), timezone=timezone))
        return replies.record(self.ops(), BankCustomers(self.lake), items, actor=self.operator, now=now,
                              words=self._channels().replies.opt_out_words,
                              source="webhook" if body is not None else "file")

    def approval_requests(self, as_of: dt.date | None = None, *, pending_only: bool = True) -> list[dict[str, Any]]:
        """Requests for a second person's approval (pending ones by default), with how many items each day holds."""
        self.require("approvals.read", "read approval requests")
        with unit_of_work(self.ops()) as session:
            held = approving.held_counts(session)
            return [{"id": a.id, "as_of": a.as_of, "kind": a.kind, "scope": a.scope, "contacts": a.contacts,
                     "threshold": a.threshold, "status": a.status, "requested_by": a.requested_by,
                     "requested_at": a.requested_at, "decided_by": a.decided_by, "reason": a.reason,
                     "held_that_day": held.get(a.as_of, 0), "text": approving.describe(a)}
                    for a in approving.requests(session, as_of=as_of, status="pending" if pending_only else None)]

    def decide_approval(self, as_of: dt.date, *, approve: bool, reason: str, strategy: str | None = None,
                        channel: str | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
        """Approve (release) or reject (cancel) a held day's send, as the operator — never the requester."""
        self.require("approvals.decide", "approve or reject a send")
        approvers = self._channels().approvals.approvers
        with unit_of_work(self.ops()) as session:
            done = approving.decide(session, as_of=as_of, approve=approve, by=self.operator, reason=reason,
                                    strategy=strategy, channel=channel, approvers=approvers, now=now)
            return {"approvals": [approving.describe(a) for a in done.approvals], "released": done.released,
                    "cancelled": done.cancelled}

    # ------------------------------------------------------------------ operations pages (docs/web.md)
    def runs(self, limit: int = 60) -> list[dict[str, Any]]:
        """The lake's run log by as-of date, newest first: steps published, rows, seconds, wall-clock times."""
        self.require("runs.read", "read the run log")
        return run_log.days(run_log.entries(self.lake.root), ["ingest", *pipeline.STEPS])[:limit]

    def run_day(self, as_of: dt.date) -> dict[str, Any]:
        """One as-of date step by step: manifests (run id, rows, inputs, config hash) and every publish of it."""
        self.require("runs.read", "read the run log")
        found = run_log.day(self.lake, as_of, run_log.entries(self.lake.root), ["ingest", *pipeline.STEPS])
        if not found["steps"]:
            raise NotFoundError(f"nothing was run as of {as_of}", hint="the runs page lists the days run")
        return found

    def list_counts(self, as_of: dt.date | None = None) -> dict[str, Any]:
        """A day's lists counted per strategy x wave x channel (contact / control / dropped, drops by reason), over
        the customers in the reader's scope (a branch manager: their branch)."""
        principal = self.require("runs.read", "read the day's lists")
        day = self._planned(as_of)
        table = self.lists(day)
        cells = list_counts.counts(table)
        scope = principal.scope("lists.read")
        return {"as_of": day, "scope": "all" if scope.all else sorted(scope.rm_ids | scope.branch_ids),
                "cells": cells, "totals": list_counts.totals(cells)}

    def list_rows(self, as_of: dt.date, *, strategy: str | None = None, wave: str | None = None,
                  channel: str | None = None, status: str | None = None, dropped_by: str | None = None,
                  limit: int = 200) -> dict[str, Any]:
        """The rows of one cell of :meth:`list_counts` (at most ``limit``), scoped; the reason and the channels'
        detail with money banded for a reader who may not see exact amounts (and withheld when the money tags
        cannot be read)."""
        principal = self.require("runs.read", "read the day's lists")
        rows, total = list_counts.select(self.lists(self._planned(as_of)), strategy=strategy, wave=wave,
                                         channel=channel, status=status, dropped_by=dropped_by, limit=limit)
        money = workspace_money_tags(self.configs)
        owners = self._book.owners
        for r in rows:
            viewer = principal.viewer(*owners.get(r["customer_id"], (None, None)), policy=self.masking)
            for k in ("reason", "detail"):
                if k in r and not viewer.money_exact:
                    r[k] = mask_money_text(r[k], money, viewer) if money is not None else None
        return {"as_of": as_of, "rows": rows, "shown": len(rows), "total": total}

    def _planned(self, as_of: dt.date | None) -> dt.date:
        """A day whose lists are published (default: the newest), or not found."""
        planned = self.lake.dates("lists")
        day = as_of or (planned[-1] if planned else None)
        if day is None or day not in planned:
            raise NotFoundError(f"no lists as of {day or 'any day'}", hint=run_hint("lists", day or "DATE"))
        return day

    def outbox_overview(self, days: int = 14) -> dict[str, Any]:
        """The outbox of the last ``days`` list dates: contacts per day x channel x status (sent, waiting — pending,
        claimed, sending, held —, unknown, failed, blocked, cancelled), and the contacts of unknown outcome."""
        self.require("outbox.resolve", "read the outbox")
        with self.ops()() as session:
            latest = delivery.latest_day(session)
            since = latest - dt.timedelta(days=days - 1) if latest else None
            counts = delivery.status_counts(session, since=since)
        return {"since": since, "counts": [{"as_of": d, "channel": c, "status": s, "contacts": n}
                                           for d, c, s, n in counts],
                "unknown": [{"key": u.key, "as_of": u.as_of, "customer_id": u.customer_id, "channel": u.channel,
                             "strategy": u.strategy_id, "wave": u.wave, "reason": u.reason, "since": u.since,
                             "age_seconds": int(u.age.total_seconds())} for u in self.outbox_unknown()]}

    def audit_search(self, *, actor: str | None = None, action: str | None = None, target: str | None = None,
                     start: dt.date | None = None, end: dt.date | None = None, page: int = 1,
                     per_page: int = 50) -> dict[str, Any]:
        """Search the audit log (compliance; read-only), newest first, one page: by actor, action (or its prefix),
        subject (target id: customer, contact key, approval) and bank-local dates ``start``..``end`` inclusive.
        The search itself is audited (``audit.search``: the filters and how many matched)."""
        principal = self.require("audit.read", "search the audit log")
        if start and end and end < start:
            raise DataError(f"the period ends ({end}) before it starts ({start})", hint="swap the dates")
        with unit_of_work(self.ops()) as session:
            found, total = audit.search(session, actor=actor or None, action=action or None, target=target or None,
                                        start=self._local_midnight(start) if start else None,
                                        end=self._local_midnight(end + dt.timedelta(days=1)) if end else None,
                                        offset=(page - 1) * per_page, limit=per_page)
            rows = [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "target_type": e.target_type,
                     "target_id": e.target_id, "reason": e.reason, "details": e.details, "result": e.result,
                     "host": e.host, "client": e.client} for e in found]
            filters = {"actor": actor, "action": action, "target": target, "from": start, "to": end, "page": page}
            audit.record(session, actor=principal.user_id, action="audit.search", target_type="audit_log",
                         at=self.clock(), details={**{k: v for k, v in filters.items() if v}, "matched": total})
        return {"entries": rows, "total": total, "page": page, "per_page": per_page,
                "pages": max(1, -(-total // per_page))}

    # ---------------------------------------------------------------- questions to a strategy's owner
    def strategy_ids(self) -> dict[str, Any]:
        """The strategy map's strategies by id (none without a map)."""
        if not self.configs.exists("strategies"):
            return {}
        return {s.id: s for s in self.configs.load("strategies", StrategiesConfig)[0].strategies}

    def _thread_row(self, t: Any, posts: bool = False) -> dict[str, Any]:
        row = {"id": t.id, "strategy": t.strategy_id, "subject": t.subject, "asked_by": t.asked_by, "rm_id": t.rm_id,
               "branch_id": t.branch_id, "customer_id": t.customer_id, "status": t.status,
               "created_at": t.created_at, "updated_at": t.updated_at}
        if posts:
            row["posts"] = [{"id": p.id, "author": p.author, "text": p.body, "at": p.created_at} for p in t.posts]
        return row

    def ask_owner(self, strategy_id: str, *, subject: str, text: str, customer_id: str | None = None
                  ) -> dict[str, Any]:
        """An RM's (or branch manager's) question to a strategy's owner (营销人员问题反馈), about one of their own
        customers or none; kept with their book and branch (who may read it), audited."""
        principal = self.require("threads.ask", "ask a strategy's owner")
        known = self.strategy_ids()
        if strategy_id not in known:
            raise NotFoundError(f"no strategy {strategy_id!r}" + did_you_mean(strategy_id, known),
                                hint="choose one of the strategy map's strategies")
        if customer_id:
            self._check_customer(customer_id, "customer.read", "ask about a customer")
        rm_id = principal.rm_ids[0] if principal.rm_ids else None
        branches = sorted(principal.scope("threads.ask").branch_ids)
        branch_id = self._book.rm_branches.get(rm_id) if rm_id else (branches[0] if branches else None)
        with unit_of_work(self.ops()) as session:
            thread = threads_store.ask(session, strategy_id=strategy_id, subject=subject, text=text,
                                       asked_by=principal.user_id, rm_id=rm_id, branch_id=branch_id,
                                       customer_id=customer_id or None, now=self.clock())
            return self._thread_row(thread, posts=True)

    def strategy_threads(self, strategy_id: str | None = None) -> list[dict[str, Any]]:
        """The questions the reader may see (an RM: their own; a branch manager: their branch's; head office:
        all), newest activity first, of one strategy or all."""
        scope = self._scope("threads.read", "read questions to strategy owners")
        with self.ops()() as session:
            return [self._thread_row(t) for t in threads_store.visible(
                session, all_=scope.all, rm_ids=scope.rm_ids, branch_ids=scope.branch_ids, strategy_id=strategy_id)]

    def _visible_thread(self, session: Any, thread_id: int, permission: str) -> Any:
        scope = self._scope("threads.read", "read questions to strategy owners")
        thread = session.get(StrategyThread, thread_id)
        if thread is None or not (scope.all or scope.covers(thread.rm_id, thread.branch_id)):
            raise self._refused(not_visible("question", str(thread_id)), permission, "thread", str(thread_id))
        return thread

    def strategy_thread(self, thread_id: int) -> dict[str, Any]:
        """One question with its replies, if the reader may see it (else the refusal an unknown one gets)."""
        with self.ops()() as session:
            return self._thread_row(self._visible_thread(session, thread_id, "threads.read"), posts=True)

    def post_to_thread(self, thread_id: int, text: str) -> dict[str, Any]:
        """A reply from head office (``threads.reply``) or the asker's follow-up, to a question the poster may see."""
        principal = self.principal
        with unit_of_work(self.ops()) as session:
            thread = self._visible_thread(session, thread_id, "threads.read")
            reply = principal.can("threads.reply")
            if not reply and thread.asked_by != principal.user_id:
                self.require("threads.reply", "reply to another person's question")
            threads_store.post(session, thread=thread, author=principal.user_id, text=text, reply=reply,
                               now=self.clock())
            return self._thread_row(thread, posts=True)

    # ------------------------------------------------------------------ the strategy editor (maker-checker)
    def strategy_map(self) -> dict[str, Any]:
        """The live map: strategies with their live version and pending drafts, the grid and the latest coverage."""
        return strategy_editor.map_view(self)

    def strategy_versions(self, strategy: str) -> dict[str, Any]:
        """A strategy's versions (0: config/strategies.yaml), which is live per branch, which are pending."""
        return strategy_editor.versions(self, strategy)

    def strategy_diff(self, strategy: str, before: int, after: int) -> str:
        """The unified diff of two versions' YAML text."""
        return strategy_editor.version_diff(self, strategy, before, after)

    def strategy_preview(self, strategy: str, text: str, *, branch: str | None = None) -> dict[str, Any]:
        """A draft's problems by field, its scripts, and how many customers its audience selects today."""
        return strategy_editor.preview(self, strategy, text, branch=branch)

    def strategy_draft(self, strategy: str, text: str, *, branch: str | None = None, note: str | None = None,
                       version: int | None = None) -> dict[str, Any]:
        """Save a draft version (validated; audited); ``version``: edit one's own draft."""
        return strategy_editor.draft(self, strategy, text, branch=branch, note=note, version=version)

    def strategy_submit(self, strategy: str, version: int) -> dict[str, Any]:
        """Submit a draft for a checker's decision (validated again; audited)."""
        return strategy_editor.submit(self, strategy, version)

    def strategy_decide(self, strategy: str, version: int, *, approve: bool, comment: str | None = None
                        ) -> dict[str, Any]:
        """Approve (live from the next run) or reject a submitted version: an approver who is not its author."""
        return strategy_editor.decide(self, strategy, version, approve=approve, comment=comment)

    def strategy_revert(self, strategy: str, version: int, *, note: str | None = None) -> dict[str, Any]:
        """A new version with an earlier one's text, submitted for approval (0: back to the YAML's)."""
        return strategy_editor.revert(self, strategy, version, note=note)

    # ------------------------------------------------------------------ real-time moments (docs/realtime.md)
    def events_config(self) -> EventsConfig:
        """``config/events.yaml`` (event sources, moments, re-entry wait), or none declared."""
        return realtime_decide.events_config(self._surroundings())

    def accept_events(self, raws: Sequence[Any], *, source: str, where: str = "events") -> event_intake.Receipt:
        """Validate a batch of events and store each id once, committed before this returns (all or nothing)."""
        return event_intake.accept(self.ops(), raws, source=source, timezone=self.config.bank.timezone, where=where)

    def ingest_events(self, path: str | Path, *, source: str = "file") -> event_intake.Receipt:
        """Events from a JSON-lines or CSV file (``lifeloop events ingest``), all or nothing, idempotent per id."""
        self.require("ingest", "ingest events")
        return self.accept_events(event_intake.read_file(Path(path)), source=source, where=Path(path).name)

    def run_event_source(self, path: str | Path, *, source: str = "file", batch: int = 500, clock: Any = None,
                         adapters: Any = None) -> tuple[event_sources.Pumped, realtime_decide.DecisionSummary]:
        """Run a JSON-lines event source (``lifeloop events run``) to its end through intake and the decider: each
        batch stored, decided, then its position committed (``<file>.offset``); a re-run goes on from there."""
        self.require("ingest", "run an event source")
        path = Path(path)
        if path.suffix.lower() not in (".jsonl", ".ndjson"):
            raise EventError(f"{path.name}: an event source is a JSON-lines file (.jsonl), one event per line",
                             hint=f"write the events as JSON lines, or store a CSV file with `lifeloop events "
                                  f"ingest {path.name}` (all or nothing, no position kept)")
        if not path.is_file():
            raise NotFoundError(f"{path}: no such event source file",
                                hint="check the path; `lifeloop simulate` + the simulator's event stream can make one")
        if batch < 1:
            raise EventError(f"--batch {batch}: a batch holds at least one event", hint="use e.g. --batch 500")
        stream = event_sources.JsonLinesSource(path, name=source)
        decider = self.decider(clock=clock, adapters=adapters)
        summary = realtime_decide.DecisionSummary()
        decide = functools.partial(decider.run_until_idle, summary=summary)   # after each stored batch
        try:
            pumped = event_sources.pump(stream, lambda raws: self.accept_events(raws, source=source, where=path.name),
                                        decide, batch=batch)
        finally:
            stream.close()
            decider.close()
        return pumped, summary

    def consume_events(self, source: str, *, idle_polls: int | None = None, clock: Any = None, adapters: Any = None,
                       consumer: Any = None, stop: Any = None) -> tuple[event_sources.Pumped,
                                                                       realtime_decide.DecisionSummary]:
        """Consume the Kafka source ``source`` of events.yaml (``lifeloop events consume``): each batch stored,
        decided (and drained through the gate), its bad messages recorded in the audit log, then its offsets
        committed. Runs until ``stop()`` is true or, with ``idle_polls``, until that many polls in a row found
        nothing; ``consumer``: a confluent-kafka consumer made elsewhere (tests)."""
        self.require("ingest", "consume an event source")
        config = self.events_config()
        spec = next((s for s in config.sources if s.name == source), None)
        if spec is None or spec.kafka is None:
            kafka = [s.name for s in config.sources if s.kafka is not None]
            raise ConfigError(f"events.yaml has no Kafka source {source!r}",
                              hint=("its Kafka sources: " + ", ".join(kafka)) if kafka else
                              "add one: sources: [{name: ..., kafka: {bootstrap_servers, topic, group_id}}]")
        stream = event_kafka.KafkaSource(spec.kafka, source, consumer=consumer)
        decider = self.decider(clock=clock, adapters=adapters)
        summary = realtime_decide.DecisionSummary()
        total = event_sources.Pumped()
        where = f"kafka source {source}"
        decide = functools.partial(decider.run_until_idle, summary=summary)   # after each stored batch
        idle = 0
        unassigned = time.monotonic() + JOIN_WAIT
        try:
            while not (stop and stop()) and (idle_polls is None or idle < idle_polls):
                got = event_sources.pump(stream, lambda raws: self.accept_events(raws, source=source, where=where),
                                         decide, batch=spec.kafka.batch, max_batches=1,
                                         skip_bad=lambda bad: event_kafka.record_bad(self.ops(), source, bad))
                # a poll counts as idle once the group gave this consumer its partitions (a join takes seconds)
                idle = 0 if got.batches else idle + (1 if stream.assigned() or time.monotonic() > unassigned else 0)
                total.batches += got.batches
                total.accepted += got.accepted
                total.duplicates += got.duplicates
                total.skipped += got.skipped
                total.committed += got.committed
        finally:
            stream.close()
            decider.close()
        return total, summary

    def decider(self, *, clock: Any = None, drain: bool = True, adapters: Any = None) -> realtime_decide.Decider:
        """The real-time decider over this workspace (close it after use); ``adapters``: channels other than
        channels.yaml's (tests)."""
        return realtime_decide.Decider(self._surroundings(), clock=clock, drain=drain, adapters=adapters)

    def set_timers(self, as_of: dt.date) -> int:
        """Set the timers of ``events.yaml``'s maturity moments from the holdings as of D (the daily run's
        ``timers`` step does this after ingest); returns how many are new. Setting a day again changes nothing."""
        self.require("run", "set timers")
        return realtime_timers.set_day(self.lake, self.ops(), self.events_config().moments, as_of)["new"]

    def moment_decisions(self, customer_id: str) -> list[dict[str, Any]]:
        """A customer's real-time decisions (moment, strategy, outcome, reason), in the order they entered (for a
        customer in the reader's scope)."""
        self._check_customer(customer_id, "customer.read", "read real-time decisions")
        with self.ops()() as session:
            return [{c: getattr(d, c) for c in ("moment_key", "strategy_id", "outcome", "reason", "entered_at", "wave",
                                                "channel", "dispatch_key", "decided_at")}
                    for d in events_store.decisions_of(session, customer_id=customer_id)]

    def _surroundings(self) -> dispatching.Surroundings:
        return dispatching.Surroundings(self.lake, self.configs, self.ops, self.bank)

    # ------------------------------------------------------------------ the customer's rights (客户权利)
    def set_no_personalisation(self, customer_id: str, *, opted_out: bool, source: str, reason: str,
                               now: dt.datetime | None = None) -> dict[str, Any]:
        """Opt a customer out of personalised marketing (PIPL Art. 24), or back in; effective at once, audited."""
        self._check_customer(customer_id, "rights.change", "change a customer's personalisation choice")
        return customer_rights.set_personalisation(self.lake, self.ops(), customer_id, opted_out=opted_out,
                                                   source=source, reason=reason, actor=self.operator, now=now)

    def delete_tags(self, customer_id: str, *, reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """Record a tag-deletion request (算法推荐管理规定 Art. 17): no derived tags from the next run; audited."""
        self._check_customer(customer_id, "rights.change", "record tag deletions")
        return customer_rights.delete_tags(self.lake, self.ops(), customer_id, reason=reason, actor=self.operator,
                                           now=now)

    def apply_retention(self, now: dt.datetime | None = None) -> customer_rights.Retention:
        """Rewrite retained snapshots without the customers of pending tag-deletion requests; audited."""
        self.require("rights.purge", "apply the retention schedule")
        return customer_rights.apply_retention(self.lake, self.ops(), actor=self.operator, now=now)

    def purge_customer(self, customer_id: str, *, reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """Purge a customer after withdrawal or closure plus the retention (PIPL Art. 47); audited."""
        self._check_customer(customer_id, "rights.purge", "purge customers")
        return customer_rights.purge(self.lake, self.ops(), self.keys, customer_id, reason=reason,
                                     actor=self.operator, retention_days=self.config.rights.purge_after_days, now=now)

    def customer_rights(self, customer_id: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """A customer's rights flags (no personalisation, tags deleted, suppressed) and requests."""
        self._check_customer(customer_id, "rights.read", "read a customer's rights")
        return customer_rights.show(self.ops(), customer_id, now=now)

    def history_source(self):
        """The plan's history: the operations database once anything was dispatched, else the lake's lists; the
        customers' rights flags always from the operations database."""

        source = OpsHistory(self.ops(), self.lake) if dispatching.has_dispatched(self.ops()) else LakeHistory(self.lake)
        return WithRights(source, self.ops())   # opt-outs and suppressions hold before the first dispatch too

    def why(self, customer_id: str, as_of: dt.date, *, known_only: bool = False) -> dict[str, Any]:
        """Every decision about a customer on a day (决策回放), replayed from that day's stored snapshots only,
        and the real-time decisions on moments of that local date (for a customer in the reader's scope).
        ``known_only`` (the web app): a customer the bank's extract does not hold is not found, for head office too."""
        rm_id, branch_id = self._check_customer(customer_id, "why.read", "replay decisions")
        if known_only and customer_id not in self._book.owners:
            raise self._refused(not_visible("customer", customer_id), "why.read", "customer", customer_id)
        viewer = self.principal.viewer(rm_id, branch_id, policy=self.masking)
        with self.ops()() as session:
            moments = events_store.day_decisions(session, customer_id=customer_id, local_date=as_of)
        if moments and not why_replay.has_plan(self.lake, as_of):
            report = why_replay.realtime_only(customer_id, as_of, viewer)
        else:
            report = why_replay.explain(self, customer_id, as_of, viewer)
        report["realtime"] = why_replay.realtime(self, moments, viewer,
                                                 frozenset(report["access"]["money_columns"]))
        return report

    def insight(self, as_of: dt.date | None = None) -> dict[str, Any]:
        """The insight summary as data (客户洞察): stages with changes, tiers and segments with AUM."""

        return summary.build(self, as_of)

    def transitions(self, before: dt.date, after: dt.date) -> dict[str, Any]:
        """Stage flows between two dates and the share of each stage moving on within 30/90 days."""

        return transitions.between(self.engine(), self.lake, before, after)

    def entry_cohorts(self, entered: str, reached: str, by: dt.date | None = None,
                      month: str | None = None) -> list[dict[str, Any]]:
        """Of the customers entering stage ``entered`` each month, how many reached ``reached`` by ``by``."""

        return transitions.cohorts(self.engine(), self.lake, entered, reached, by, month)

    def kpis(self, start: dt.date, end: dt.date) -> dict[str, Any]:
        """Lifecycle KPIs between two dates (stage mix, transitions, churn, activation, retention, sales)."""

        return kpis.compute(self.engine(), self.lake, start, end)

    def board_kpis(self, start: dt.date, end: dt.date) -> dict[str, Any]:
        """The board's KPIs: :meth:`kpis` when a lifecycle snapshot is published in the period; else the sales
        part alone (the daily sales report needs only the bank's holdings), marked ``lifecycle_missing``."""
        if any(start <= d <= end for d in self.lake.dates("lifecycle")):
            return {**self.kpis(start, end), "lifecycle_missing": False}
        if end < start:
            raise DataError(f"the period ends ({end}) before it starts ({start})", hint="give the earlier date first")
        engine = self.engine()
        engine.register_bank(self.lake, end)
        daily = kpis.daily_sales(engine, start, end)
        return {"schema": kpis.SCHEMA, "from": start, "to": end, "snapshots": [], "daily_sales": daily,
                "sales_by_branch_rm": kpis.sales_totals(daily), "lifecycle_missing": True}

    def backfill(self, dates: Sequence[dt.date], steps: Sequence[str] = ("features", "lifecycle", "segments"),
                 engine: str | None = None) -> list[StepResult]:
        """Run the insight steps for a series of dates, oldest first, so that stage history exists."""

        results: list[StepResult] = []
        for d in sorted(set(dates)):
            wanted = [s for s in steps if not (s == "features" and self.lake.exists("features", d))]
            results.extend(self.run(d, wanted, engine))
        return results

    def snapshot(self, area: str, as_of: dt.date | None = None) -> pa.Table:
        """Read a published step snapshot as an Arrow table (customer-level areas: only the reader's scope)."""
        import pyarrow.parquet as pq

        dates = self.lake.dates(area)
        if not dates:
            raise DataError(f"no {area} snapshot has been published yet",
                            hint=run_hint(area))
        as_of = as_of or dates[-1]
        path = self.lake.snapshot_dir(area, as_of) / f"{area}.parquet"
        if not path.exists():
            raise DataError(f"no {area} snapshot as of {as_of}",
                            hint=f"published dates: {', '.join(d.isoformat() for d in dates[-5:])}")
        table = pq.read_table(path)
        if area in SCOPED_AREAS and "customer_id" in table.column_names:
            return self._scoped(table, SCOPED_AREAS[area], f"read the {area}")
        return table

    # ---------------------------------------------------------------- the model shelf (模型货架)
    def models_config(self) -> ModelsConfig:
        """config/models.yaml, or the built-in shelf (the churn warning) when the workspace has none."""
        return self.load_config("models", ModelsConfig)[0] if self.configs.exists("models") else ModelsConfig()

    def models(self) -> list[dict[str, Any]]:
        """Every declared or fitted model: its versions and its active version."""
        declared = [m.name for m in self.models_config().models]
        return [{"name": n, "declared": n in declared, "versions": model_registry.versions(self.lake, n),
                 "active": model_registry.champion(self.lake, n), "challenger": model_registry.challenger(self.lake, n)}
                for n in sorted(set(declared) | set(model_registry.names(self.lake)))]

    def fit_model(self, name: str, as_of: dt.date) -> dict[str, Any]:
        """Fit a declared model as of D (validated out of time) and save it as its next version."""
        self.require("models.fit", "fit models")
        _, manifest = model_training.fit_and_save(self.lake, self.models_config().spec(name), as_of, self.operator)
        return manifest

    def model(self, name: str, version: str | None = None) -> dict[str, Any]:
        """A fitted version's manifest (default: the newest) with the model's history."""
        known = model_registry.versions(self.lake, name)
        if version is None and not known:
            raise DataError(f"model {name} has no fitted version", hint=f"fit it: `lifeloop models fit {name}`")
        manifest = model_registry.manifest(self.lake, name, version or known[-1])
        return {**manifest, "active": model_registry.champion(self.lake, name),
                "challenger": model_registry.challenger(self.lake, name),
                "history": model_registry.history(self.lake, name)}

    def monitor_model(self, name: str, as_of: dt.date, version: str | None = None) -> dict[str, Any]:
        """Input and score drift (PSI) against training, missing inputs, calibration over time."""
        return model_monitor.monitor(self.lake, name, as_of, version)

    def evaluate_model(self, name: str, version: str | None = None, as_of: dt.date | None = None) -> dict[str, Any]:
        """A fitted version's AUC, PR-AUC, top-decile lift and lift table on the newest closed outcome window."""
        return model_evaluation.evaluate(self.lake, name, version, as_of)

    def promote_model(self, name: str, version: str, reason: str) -> dict[str, Any]:
        """Make a fitted version the active one; kept in the model's history and on the audit log."""
        self.require("models.promote", "promote models")
        entry = model_registry.promote(self.lake, name, version, self.operator, reason)
        self._audit_model("model.promote", name, version, reason)
        return entry

    def retire_model(self, name: str, version: str, reason: str) -> dict[str, Any]:
        """Retire a fitted version for good; kept in the model's history and on the audit log."""
        self.require("models.promote", "retire models")
        entry = model_registry.retire(self.lake, name, version, self.operator, reason)
        self._audit_model("model.retire", name, version, reason)
        return entry

    def challenge_model(self, name: str, version: str, share: float, reason: str) -> dict[str, Any]:
        """Score a version next to the champion: in shadow (share 0) or on a share of customers; audited."""
        self.require("models.promote", "challenge models")
        entry = model_registry.challenge(self.lake, name, version, share, self.operator, reason)
        self._audit_model("model.challenge", name, version, reason, {"share": share})
        return entry

    def end_challenge(self, name: str, reason: str) -> dict[str, Any]:
        """Stop scoring a model's challenger; audited."""
        self.require("models.promote", "end a model's challenge")
        entry = model_registry.end_challenge(self.lake, name, self.operator, reason)
        self._audit_model("model.end_challenge", name, entry["version"], reason)
        return entry

    def rollback_model(self, name: str, reason: str) -> dict[str, Any]:
        """Restore a model's previous champion; kept in its history and on the audit log."""
        self.require("models.promote", "roll back models")
        entry = model_registry.rollback(self.lake, name, self.operator, reason)
        self._audit_model("model.rollback", name, entry["version"], reason, {"replaced": entry["replaced"]})
        return entry

    def _audit_model(self, action: str, name: str, version: str, reason: str,
                     details: dict[str, Any] | None = None) -> None:
        with unit_of_work(self.ops()) as session:
            audit.record(session, actor=self.operator, action=action, target_type="model",
                         target_id=f"{name}/{version}", reason=reason, details=details or {})

    def simulate(self, out: str | Path, customers: int = 2000, days: int = 365, seed: int = 7,
                 start: dt.date | None = None, format: str = "parquet", truth: str | Path | None = None):
        """Write a synthetic bank's extracts (canonical CSV/Parquet) to ``out``."""

        return simulator.simulate(Path(out), customers=customers, days=days, seed=seed, start=start, format=format,
                        truth=truth)

