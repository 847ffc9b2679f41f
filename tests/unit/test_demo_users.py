"""The demo's users of the web app and its last lines (cli/demo_users.py, cli/demo.py)."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

from lifeloop.cli.demo import WEB_URL, final_message
from lifeloop.cli.demo_users import DemoUser, new_password, plan_users, web_message, write_users_file
from lifeloop.data.access import parse_grant

USERS = [DemoUser(u, role, name, what, new_password()) for u, role, name, what in plan_users("RM00007", "BR0002")]


def test_the_four_demo_users_hold_an_rm_book_a_branch_head_office_and_approval():
    grants = {u.user: parse_grant(u.role) for u in USERS}
    assert [(g.role, g.scope) for g in grants.values()] == [("rm", "RM00007"), ("branch_manager", "BR0002"),
                                                            ("analyst", ""), ("approver", "")]
    assert list(grants) == ["demo.rm", "demo.manager", "demo.analyst", "demo.approver"]


def test_passwords_are_fresh_random_and_long_enough_for_the_web_app():
    from lifeloop.store.ops.web_sessions import MIN_PASSWORD

    made = {new_password() for _ in range(50)}
    assert len(made) == 50 and all(len(p) >= max(MIN_PASSWORD, 20) for p in made)


def test_the_users_file_is_the_owners_only_and_holds_every_user_and_password(tmp_path):
    path = write_users_file(tmp_path, USERS, WEB_URL)
    assert path == tmp_path / "demo-users.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    for u in USERS:
        assert f"user:     {u.user}\npassword: {u.password}\nrole:     {u.role}" in text
    assert write_users_file(tmp_path, USERS[:1], WEB_URL).read_text(encoding="utf-8").count("password:") == 1


def test_the_last_lines_say_how_to_serve_the_demo_workspace_and_where_the_users_are():
    ws, users_file = Path("demo-workspace"), Path("demo-workspace/demo-users.txt")
    lines = final_message(".venv/bin/lifeloop", ws, ws / "report.html", users_file, USERS, dt.date(2025, 2, 3))
    text = "\n".join(lines)
    assert ".venv/bin/lifeloop -w demo-workspace serve" in text
    assert "http://127.0.0.1:8000/" in text and str(users_file) in text
    assert all(u.user in text for u in USERS)
    assert not any(u.password in text for u in USERS)     # passwords are in the file only
    assert web_message(".venv/bin/lifeloop", ws, users_file, USERS, WEB_URL) == lines[-2:]
