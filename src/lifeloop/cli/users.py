"""``lifeloop users ...``, ``lifeloop whoami`` and ``lifeloop unmask``: who may sign in, as what, and seeing a
customer's personal data unmasked for a while. Thin commands over Context; roles come from the signed-in user,
never from a flag (docs/security.md, "Principals and roles").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer

ROLE_HELP = ("A role: admin, analyst, compliance, approver, branch_manager=BRANCH_ID or rm=RM_ID "
             "(repeatable).")


def _token_lines(console: Any, user: str, token: str) -> None:
    out = console()
    out.print(f"Token for {user}, shown once (only its hash is kept):")
    typer.echo(f"  {token}")
    out.print(f"Sign in with: export LIFELOOP_USER={user} LIFELOOP_TOKEN=<the token>")


def users_app(context: Callable[[], Any], console: Callable[[], Any]) -> typer.Typer:
    """The ``users`` command group (administrators only, except the workspace owner's very first user)."""
    app = typer.Typer(help="Lifeloop users and their roles (administrators only; every change is audited).",
                      no_args_is_help=True)

    @app.command("add")
    def add(name: str = typer.Argument(..., help="The user's name (what the audit log will call them)."),
            role: list[str] = typer.Option(..., "--role", help=ROLE_HELP),
            display_name: str | None = typer.Option(None, "--display-name", help="Full name, e.g. 张伟."),
            os_user: str | None = typer.Option(None, "--os-user",
                                               help="Sign this user in when Lifeloop runs as this OS user.")) -> None:
        """Add a user with their roles and print their one-time sign-in token.

        The very first user of a workspace needs no sign-in: its owner runs
        `lifeloop users add NAME --role admin --os-user $(whoami)`."""
        with context() as ctx:
            if ctx.user_count() == 0:
                row, token = ctx.bootstrap_admin(name, os_user=os_user or "", display_name=display_name, roles=role)
            else:
                row, token = ctx.add_user(name, roles=role, display_name=display_name, os_user=os_user)
        console().print(f"added {row['user']} ({', '.join(row['roles'])})"
                        + (f", signs in as OS user {row['os_user']}" if row["os_user"] else ""))
        _token_lines(console, row["user"], token)

    @app.command("grant")
    def grant(name: str = typer.Argument(..., help="The user."),
              role: str = typer.Argument(..., help="admin, analyst, compliance, approver, branch_manager=B01, "
                                                   "rm=RM001.")) -> None:
        """Give a user one more role."""
        with context() as ctx:
            row = ctx.grant_role(name, role)
        console().print(f"{row['user']} now holds: {', '.join(row['roles'])}")

    @app.command("revoke")
    def revoke(name: str = typer.Argument(..., help="The user."),
               role: str = typer.Argument(..., help="The role to take away, written as `users list` shows it.")
               ) -> None:
        """Take a role away from a user (the last administrator keeps theirs)."""
        with context() as ctx:
            row = ctx.revoke_role(name, role)
        console().print(f"{row['user']} now holds: {', '.join(row['roles']) or 'no role'}")

    @app.command("disable")
    def disable(name: str = typer.Argument(..., help="The user.")) -> None:
        """Stop a user from signing in (they stay on record, so the audit log still names them)."""
        with context() as ctx:
            row = ctx.disable_user(name)
        console().print(f"{row['user']} is disabled: they can no longer sign in")

    @app.command("reset-token")
    def reset(name: str = typer.Argument(..., help="The user.")) -> None:
        """Issue a new sign-in token for a user; the old one stops working."""
        with context() as ctx:
            token = ctx.reset_token(name)
        _token_lines(console, name, token)

    @app.command("set-password")
    def set_password(name: str = typer.Argument(..., help="The user."),
                     stdin: bool = typer.Option(False, "--stdin",
                                                help="Read the password from the first line of standard input "
                                                     "(for scripts) instead of prompting twice.")) -> None:
        """Set a user's password for the web app (argon2id hash; their web sessions end, a lock-out is lifted).

        An administrator for anyone, a user for themselves. The password is never printed, logged or audited."""
        import sys

        if stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        with context() as ctx:
            row = ctx.set_password(name, password)
        console().print(f"{row['user']} can sign in to the web app with the new password "
                        "(`lifeloop serve`, docs/web.md)")

    @app.command("list")
    def list_users(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """Every user, active or not, with their roles and mapped OS user."""
        with context() as ctx:
            rows = ctx.users()
        if as_json:
            typer.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
            return
        for r in rows:
            console().print(f"{r['user']} ({r['name']}): {', '.join(r['roles']) or 'no role'}"
                            + ("" if r["active"] else " (disabled)")
                            + (f"; OS user {r['os_user']}" if r["os_user"] else ""))

    return app


def register(app: typer.Typer, context: Callable[[], Any], console: Callable[[], Any]) -> None:
    """``whoami`` and ``unmask`` on the main app, and the ``users`` group."""
    app.add_typer(users_app(context, console), name="users")

    @app.command()
    def whoami(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """Who you are signed in as (LIFELOOP_USER + LIFELOOP_TOKEN, else your mapped OS user), your roles and
        what they allow. Roles come from your user, never from command-line flags."""
        with context() as ctx:
            me = ctx.whoami()
        if as_json:
            typer.echo(json.dumps(me, indent=2, ensure_ascii=False))
            return
        out = console()
        out.print(f"{me['user']} ({me['name']}), signed in by {me['signed_in_by']}")
        out.print(f"roles: {', '.join(me['roles']) or 'none'}")
        out.print(f"may: {', '.join(me['permissions']) or 'nothing'}")

    @app.command()
    def unmask(customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
               reason: str = typer.Option(..., "--reason", help="Why (a complaint or case number); audited."),
               fields: str | None = typer.Option(None, "--fields",
                                                 help="Comma-separated: name, mobile, id_number, email, birth_date "
                                                      "(default: all your roles may unmask)."),
               minutes: int = typer.Option(15, "--minutes", help="How long the grant lasts.")) -> None:
        """See a customer's personal fields unmasked for a while (compliance, admin; an RM: the ID number of
        their own customer). The grant and every view under it are audited."""
        with context() as ctx:
            done = ctx.unmask(customer_id, reason=reason, minutes=minutes,
                              fields=fields.split(",") if fields else None)
        console().print(f"{done['user']} may see {', '.join(done['fields'])} of {done['customer_id']} unmasked until "
                        f"{done['until'].isoformat(timespec='seconds')} (audited): `lifeloop customer "
                        f"{done['customer_id']}`")

