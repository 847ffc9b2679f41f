"""``lifeloop keys``: the workspace's encryption keys — create the key file, rotate, re-encrypt (docs/security.md)."""

from __future__ import annotations

import typer

from lifeloop.context import Context
from lifeloop.errors import ConfigError
from lifeloop.store.keys import FileKeyManager

keys_app = typer.Typer(help="Encryption keys (密钥): the key file, master-key rotation, re-encryption.",
                       no_args_is_help=True)


def _context(cli: typer.Context) -> Context:
    params = cli.find_root().params
    return Context(params.get("workspace"), debug=bool(params.get("debug")))


@keys_app.command("init")
def init(cli: typer.Context) -> None:
    """Create the embedded key file (0600) where lifeloop.yaml's keys.path says, if there is none yet."""
    with _context(cli) as ctx:
        settings = ctx.config.keys
        if settings.provider != "file":
            raise ConfigError(f"keys.provider is {settings.provider!r}: the bank's KMS holds the master keys",
                              hint="nothing to create here; `lifeloop keys init` is for provider: file")
        path = ctx.workspace / settings.path
        FileKeyManager.create(path)
    typer.echo(f"key file created: {path} (mode 0600). Back it up apart from the data: without it, encrypted "
               "data cannot be read")


@keys_app.command("rotate")
def rotate(cli: typer.Context,
           reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit log).")) -> None:
    """New master-key version: data keys re-wrapped, encrypted bank batches rewritten; older versions kept to read."""
    with _context(cli) as ctx:
        done = ctx.rotate_keys(reason)
    typer.echo(f"master key version {done.master_version} is current; re-wrapped {len(done.rewrapped)} data "
               f"key(s) ({', '.join(done.rewrapped) or 'none yet'}), rewrote {done.lake_files} lake file(s)")


@keys_app.command("reencrypt")
def reencrypt(cli: typer.Context,
              new_data_key: bool = typer.Option(False, "--new-data-key",
                                                help="Make a new operations data key first and move every row to it."),
              reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit log).")) -> None:
    """Encrypt what is still plaintext (rows, bank batches from before encryption); move rows to the newest key."""
    with _context(cli) as ctx:
        done = ctx.reencrypt(new_data_key=new_data_key, reason=reason)
    rows = sum(done.ops_rows.values())
    typer.echo(f"re-encrypted {rows:,} operations value(s) and {done.lake_files} lake file(s)")
