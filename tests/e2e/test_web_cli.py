"""`lifeloop users set-password NAME`: prompted twice (a mismatch asks again), or one line from stdin with --stdin;
the web sign-in then accepts the password; a short one is refused before anything is written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.context import Context
from lifeloop.store.ops import web_sessions
from lifeloop.store.ops.models import AuditEntry, User
from tests.web_world import cheap_argon2


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.delenv("LIFELOOP_DATABASE_URL", raising=False)
    monkeypatch.setattr(web_sessions, "_hasher", cheap_argon2)
    ws = tmp_path / "ws"
    Context.init(ws).close()
    added = CliRunner().invoke(app, ["-w", str(ws), "users", "add", "li.na", "--role", "rm=RM001"])
    assert added.exit_code == 0, added.output
    return ws


def password_hash(ws) -> str | None:
    with Context(ws) as ctx, ctx.ops()() as s:
        return s.scalar(sa.select(User.password_hash).where(User.id == "li.na"))


def test_set_password_from_stdin_lets_the_user_sign_in_to_the_web_app(ws):
    done = CliRunner().invoke(app, ["-w", str(ws), "users", "set-password", "li.na", "--stdin"],
                              input="a long enough pass phrase\n")
    assert done.exit_code == 0, done.output
    assert "a long enough pass phrase" not in done.output
    assert password_hash(ws).startswith("$argon2id$")
    with Context(ws) as ctx:
        assert ctx.web_sign_in("li.na", "a long enough pass phrase") is not None
        assert ctx.web_sign_in("li.na", "a long enough pass phras") is None
        with ctx.ops()() as s:
            assert s.scalars(sa.select(AuditEntry.action).where(AuditEntry.action == "user.set_password")).all()


def test_set_password_prompts_twice_and_a_short_password_is_refused(ws):
    typed = "first pass phrase!\nsecond pass phrase\nfirst pass phrase!\nfirst pass phrase!\n"  # mismatch, then a pair
    prompted = CliRunner().invoke(app, ["-w", str(ws), "users", "set-password", "li.na"], input=typed)
    assert prompted.exit_code == 0, prompted.output
    assert "do not match" in prompted.output.lower()
    with Context(ws) as ctx:
        assert ctx.web_sign_in("li.na", "first pass phrase!") is not None
    before = password_hash(ws)
    short = CliRunner().invoke(app, ["-w", str(ws), "users", "set-password", "li.na", "--stdin"], input="short\n")
    assert short.exit_code != 0 and "12 to 1024 characters" in str(short.exception or short.output)
    assert password_hash(ws) == before
