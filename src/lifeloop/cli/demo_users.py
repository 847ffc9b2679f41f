"""The demo's users of the web app: an RM, a branch manager, a head-office analyst and an approver.

``lifeloop demo`` ends by creating them in the demo workspace's operations database (as the workspace's
owner, the administrator ``Context.init`` made; every addition audited), each with a freshly generated
random password (``secrets``) kept only as its argon2id hash in the database and written once to
``<workspace>/demo-users.txt`` with mode 0600 — never printed. The final message says how to open the web
app and where that file is (docs/web.md, "The demo's users").
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifeloop.execution.bank_customers import BankCustomers
from lifeloop.store.ops import tasks as tasks_store

USERS_FILE = "demo-users.txt"
PASSWORD_BYTES = 15          # secrets.token_urlsafe(15): 20 characters, 120 bits


@dataclass(frozen=True)
class DemoUser:
    """One demo user: the name to sign in with, the role (with its book or branch) and what they do."""

    user: str
    role: str
    display_name: str
    what: str
    password: str


def busiest_book(ctx: Any) -> tuple[str, str]:
    """The relationship manager whose worklist has the most open tasks (else the largest book) and their branch."""
    book = BankCustomers(ctx.lake)
    with ctx.ops()() as session:
        tasks = tasks_store.open_by_rm(session)
    customers = Counter(rm for rm, _ in book.owners.values() if rm)
    if not customers:
        raise ValueError("the demo bank has no customer with a relationship manager")
    rm = max(customers, key=lambda r: (tasks.get(r, 0), customers[r], r))
    branch = book.rm_branches.get(rm) or Counter(b for r, b in book.owners.values() if r == rm).most_common(1)[0][0]
    return rm, str(branch)


def plan_users(rm_id: str, branch_id: str) -> list[tuple[str, str, str, str]]:
    """(user, role, display name, what they see) of the four demo users."""
    return [
        ("demo.rm", f"rm={rm_id}", "演示客户经理 Demo RM", f"relationship manager: the worklist of book {rm_id}"),
        ("demo.manager", f"branch_manager={branch_id}", "演示网点负责人 Demo branch manager",
         f"branch manager of {branch_id}: its RMs' worklists and customers, the board of the branch"),
        ("demo.analyst", "analyst", "演示总行分析师 Demo analyst",
         "head-office analyst: the strategy board, every customer"),
        ("demo.approver", "approver", "演示审批人 Demo approver", "approver: approves or rejects strategy changes"),
    ]


def new_password() -> str:
    """A fresh random password (20 URL-safe characters)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def create_demo_users(ctx: Any) -> list[DemoUser]:
    """Add the four demo users with new random passwords (administrator: the workspace's owner; audited)."""
    rm, branch = busiest_book(ctx)
    made = []
    for user, role, display, what in plan_users(rm, branch):
        password = new_password()
        ctx.add_user(user, roles=[role], display_name=display)   # its CLI token is not needed: discarded
        ctx.set_password(user, password)
        made.append(DemoUser(user, role, display, what, password))
    return made


def write_users_file(directory: Path, users: list[DemoUser], url: str) -> Path:
    """``<workspace>/demo-users.txt``, created with mode 0600 (owner only) before a byte is written."""
    path = directory / USERS_FILE
    if path.exists():
        path.unlink()
    lines = ["# Lifeloop demo users of the web app (made by `lifeloop demo`; random passwords, this file only).",
             f"# Sign in at {url}sign-in . Keep this file private: it is readable by its owner only (0600).",
             ""]
    for u in users:
        lines += [f"user:     {u.user}", f"password: {u.password}", f"role:     {u.role} ({u.what})", ""]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.chmod(path, 0o600)   # whatever the umask
    return path


def web_message(exe: str, directory: Path, users_file: Path, users: list[DemoUser], url: str) -> list[str]:
    """The demo's last lines: how to open the web app on the demo workspace, and where its users are."""
    names = ", ".join(f"{u.user} ({u.role})" for u in users)
    return [f"Open the web app: {exe} -w {directory} serve   then browse {url}",
            f"Sign in as one of the demo users: {names}. Their passwords are in {users_file} (readable by you only)."]
