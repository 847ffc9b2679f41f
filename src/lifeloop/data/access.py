"""Who may do what to whose customers: principals, the role -> permission matrix and scopes (pure rules).

A :class:`Principal` is a signed-in Lifeloop user (or an explicit system principal for library code and
tests): their id, name and role grants. Roles (docs/security.md, "Principals and roles"):

==============  =====================================  ==========================================
role            who                                    scope of customer data
==============  =====================================  ==========================================
admin           head-office administrator              every customer (masked unless unmasked)
analyst         head-office analyst                    every customer, masked
compliance      compliance officer                     every customer (masked unless unmasked)
branch_manager  manager of one branch (``B01``)        customers of that branch
rm              relationship manager of a book         customers whose rm_id is theirs
approver        strategy approver (双人复核)            none: approves sends, sees no customer
==============  =====================================  ==========================================

A user may hold several roles; a permission is held when any of them grants it, and a scope is the union
of what the granting roles cover. "Not yours" and "does not exist" are refused with the same error
(:func:`not_visible`), so a refusal reveals nothing about other books. Nothing here reads a file or a
database: the operations database keeps users and grants (:mod:`lifeloop.store.ops.principals`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from lifeloop.data.masking import AccessError, Policy, Role, column_kind
from lifeloop.data.masking import role as masking_role
from lifeloop.errors import NotFoundError, did_you_mean

ROLE_NAMES = ("admin", "analyst", "compliance", "branch_manager", "rm", "approver")
SCOPED_ROLES = {"branch_manager": "branch_id", "rm": "rm_id"}   # roles granted for one branch / one book
HEAD_OFFICE = ("admin", "analyst", "compliance")                  # see every customer

# permission -> the roles that hold it (each permission names a Context method or a group of them)
PERMISSIONS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    # reading customer data (scoped: see :func:`scope`)
    "customer.read": ("admin", "analyst", "compliance", "branch_manager", "rm"),
    "why.read": ("admin", "analyst", "compliance", "branch_manager", "rm"),
    "worklist.read": ("admin", "analyst", "compliance", "branch_manager", "rm"),
    "worklist.export": ("admin", "analyst", "branch_manager", "rm"),
    "consent.read": ("admin", "analyst", "compliance", "branch_manager", "rm"),
    "lists.read": ("admin", "analyst", "compliance", "branch_manager", "rm"),
    "customer.unmask": ("admin", "compliance", "rm"),      # rm: own customers, the fields identity allows
    # changing state
    "consent.change": ("admin", "compliance", "rm"),       # rm: own customers only
    "consent.import": ("admin", "compliance"),
    "rights.read": ("admin", "analyst", "compliance", "branch_manager", "rm"),
    "rights.change": ("admin", "compliance", "rm"),         # opt-out of personalisation, tag deletion: rm own book
    "rights.purge": ("admin", "compliance"),                # purge, and the retention job that honours deletions
    "replies.record": ("admin", "analyst", "compliance"),
    "ingest": ("admin", "analyst"),
    "run": ("admin", "analyst"),
    "dispatch": ("admin", "analyst"),
    "outbox.resolve": ("admin", "analyst"),
    "feedback.import": ("admin", "analyst"),
    "feedback.record": ("rm",),                              # the marketing form: own worklist's tasks only
    "board.read": ("admin", "analyst", "compliance", "branch_manager"),   # a branch manager: their branch's
    # the operations pages (web): runs and their steps, the day's lists counted (a branch manager: their branch)
    "runs.read": ("admin", "analyst", "compliance", "branch_manager"),
    # questions and feedback to a strategy's owner (营销人员问题反馈): an RM asks about their own work, head
    # office answers; an RM reads their own threads, a branch manager their branch's, head office all
    "threads.ask": ("rm", "branch_manager"),
    "threads.read": ("admin", "analyst", "compliance", "branch_manager", "rm"),
    "threads.reply": ("admin", "analyst"),
    "board.export": ("admin", "analyst", "compliance", "branch_manager"),  # the board / daily sales as .xlsx
    "approvals.read": ("admin", "analyst", "compliance", "approver"),
    "approvals.decide": ("approver",),
    # the strategy editor (maker-checker): read the map and its versions; draft and submit (a branch manager: their
    # branch's variants only); approve or reject — never one's own version (docs/strategies.md, "Versions")
    "strategies.read": ("admin", "analyst", "compliance", "branch_manager", "approver"),
    "strategies.edit": ("admin", "analyst", "branch_manager"),
    "strategies.approve": ("approver",),
    "models.fit": ("admin", "analyst"),
    "models.promote": ("admin",),
    "audit.read": ("admin", "compliance"),
    "audit.export": ("admin", "compliance"),
    "audit.prune": ("admin",),
    "users.manage": ("admin",),
    "keys.manage": ("admin",),                               # rotate the master key, re-encrypt
}.items()}

# each role views customer data with the masking role of the same name (lifeloop.data.masking; config/masking.yaml
# may redefine them): admin and compliance see masked data until they unmask a customer for a reason
# (time-limited, audited); a branch manager sees their branch as an RM sees their book; an approver is an analyst
MASKING_ROLE = {r: r for r in ("admin", "analyst", "compliance", "branch_manager", "rm", "approver")}


class PermissionDenied(AccessError):
    """The signed-in user's roles do not allow this action."""

    exit_code = 2


class SignInRefused(AccessError):
    """No active Lifeloop user for the credentials given (the message never says which part was wrong)."""

    exit_code = 2


@dataclass(frozen=True, order=True)
class Grant:
    """One role held by a user; ``scope`` is the branch (branch_manager) or the RM id (rm), else empty."""

    role: str
    scope: str = ""

    def __str__(self) -> str:
        return f"{self.role}={self.scope}" if self.scope else self.role


def parse_grant(text: str) -> Grant:
    """``admin``, ``rm=RM001`` or ``branch_manager=B01`` -> a :class:`Grant`, with a clear error otherwise."""
    name, _, scope = (text or "").strip().partition("=")
    name, scope = name.strip(), scope.strip()
    if name not in ROLE_NAMES:
        import difflib

        close = difflib.get_close_matches(name, ROLE_NAMES, n=1)
        raise AccessError(f"unknown role {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                          hint=f"roles are: {', '.join(ROLE_NAMES)}; rm and branch_manager name their book or "
                               "branch, e.g. rm=RM001, branch_manager=B01")
    if name in SCOPED_ROLES and not scope:
        raise AccessError(f"role {name} needs the {SCOPED_ROLES[name]} it is for",
                          hint=f"write {name}={'RM001' if name == 'rm' else 'B01'}")
    if name not in SCOPED_ROLES and scope:
        raise AccessError(f"role {name} is not for one branch or book (got {text!r})", hint=f"write {name}")
    return Grant(name, scope)


@dataclass(frozen=True)
class Scope:
    """Which customers a permission reaches: all of them, or those of some RMs' books and some branches."""

    all: bool = False
    rm_ids: frozenset[str] = frozenset()
    branch_ids: frozenset[str] = frozenset()

    def covers(self, rm_id: str | None, branch_id: str | None) -> bool:
        """Whether a customer (of RM ``rm_id`` at branch ``branch_id``) is inside the scope."""
        return self.all or (rm_id is not None and rm_id in self.rm_ids) or \
            (branch_id is not None and branch_id in self.branch_ids)

    @property
    def empty(self) -> bool:
        return not (self.all or self.rm_ids or self.branch_ids)


@dataclass(frozen=True)
class Principal:
    """Who is acting: a Lifeloop user with their role grants, and how they signed in."""

    user_id: str
    display_name: str
    grants: tuple[Grant, ...]
    method: str = "token"     # token, os_user, system

    @classmethod
    def system(cls, name: str, roles: Iterable[str] = ("admin",)) -> Principal:
        """An explicit principal for library code and tests (never built by the CLI): ``system:<name>``."""
        return cls(f"system:{name}", f"system ({name})", tuple(parse_grant(r) for r in roles), method="system")

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)

    def can(self, permission: str) -> bool:
        return bool(self.roles & PERMISSIONS[permission])

    def require(self, permission: str, what: str | None = None) -> None:
        """Refuse (:class:`PermissionDenied`, exit 2) unless one of the user's roles holds ``permission``."""
        if not self.can(permission):
            holders = sorted(PERMISSIONS[permission])
            raise PermissionDenied(
                f"user {self.user_id} may not {what or permission} (roles: {', '.join(sorted(self.roles)) or 'none'})",
                hint=f"it needs the role {' or '.join(holders)}; an administrator grants roles "
                     f"(`lifeloop users grant {self.user_id} ROLE`); `lifeloop whoami` shows yours")

    def scope(self, permission: str) -> Scope:
        """The customers ``permission`` reaches for this user: the union over the roles that hold it."""
        holders = PERMISSIONS[permission]
        held = [g for g in self.grants if g.role in holders]
        return Scope(all=any(g.role in HEAD_OFFICE for g in held),
                     rm_ids=frozenset(g.scope for g in held if g.role == "rm"),
                     branch_ids=frozenset(g.scope for g in held if g.role == "branch_manager"))

    @property
    def rm_ids(self) -> tuple[str, ...]:
        return tuple(sorted(g.scope for g in self.grants if g.role == "rm"))

    def viewer(self, rm_id: str | None = None, branch_id: str | None = None,
               unmasked: Iterable[str] = (), policy: Policy | None = None) -> Role:
        """The masking role for one customer: the most revealing of the user's roles that covers them (in the
        masking ``policy``, default the built-in one), with the kinds of any unmask grant added (``unmasked``:
        customers column names, e.g. id_number; the grant was checked when it was given)."""
        covering = [g.role for g in self.grants
                    if g.role in HEAD_OFFICE or g.role == "approver"
                    or (g.role == "rm" and g.scope == rm_id) or (g.role == "branch_manager" and g.scope == branch_id)]
        roles = [masking_role(MASKING_ROLE[r], policy) for r in covering] or [masking_role("analyst", policy)]
        base = max(roles, key=lambda r: (len(r.unmasked), r.money_exact))
        extra = frozenset(k for f in unmasked if (k := column_kind("customers", f)) is not None)
        if not extra - base.unmasked:
            return base
        return dataclasses.replace(base, name=f"{base.name}+unmasked", unmasked=base.unmasked | extra,
                                   granted=frozenset(extra - base.unmasked))


def not_visible(kind: str, ident: str, visible: Iterable[str] = ()) -> NotFoundError:
    """The one refusal for a thing that does not exist *or* is outside the user's scope (same class, same text).

    The "did you mean" draws only on what the user may see, so it is the same whether ``ident`` exists.
    """
    return NotFoundError(f"no {kind} {ident!r} among those you may see{did_you_mean(ident, visible)}",
                         hint=f"check the {kind} number (ids are case-sensitive); you see your own scope only "
                              "(`lifeloop whoami` shows it) — ask your branch manager if it should be yours")


def describe(principal: Principal) -> dict[str, object]:
    """The principal as data for ``lifeloop whoami``: id, name, how signed in, roles and permissions."""
    return {"user": principal.user_id, "name": principal.display_name, "signed_in_by": principal.method,
            "roles": [str(g) for g in sorted(principal.grants)],
            "permissions": sorted(p for p in PERMISSIONS if principal.can(p))}
