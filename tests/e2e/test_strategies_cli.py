"""`lifeloop strategies` versions from the command line, each command signed in as its user: draft from the live
text, submit, the author refused as checker, an approver approves, the map shows the new version, diff, revert."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.context import Context
from lifeloop.data.access import PermissionDenied

S = "birthday_care"


def cli(ws, *args, user=None, token=None):
    env = {"LIFELOOP_USER": user, "LIFELOOP_TOKEN": token, "LIFELOOP_DATABASE_URL": None, "COLUMNS": "200"}
    return CliRunner().invoke(app, ["-w", str(ws), *args], env=env)


def test_draft_submit_approve_diff_and_revert_from_the_command_line(tmp_path):
    ws = tmp_path / "ws"
    with Context.init(ws) as owner:
        ana = owner.add_user("ana", roles=["analyst"])[1]
        chk = owner.add_user("chk", roles=["approver"])[1]
    shown = cli(ws, "strategies", "draft", S, "--show", user="ana", token=ana)
    assert shown.exit_code == 0, shown.output
    data = yaml.safe_load(shown.output)
    assert data["id"] == S
    data["holdout"] = 0.25
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**data, "holdout": 2}, allow_unicode=True), encoding="utf-8")
    refused = cli(ws, "strategies", "draft", S, "--file", str(bad), user="ana", token=ana)
    assert refused.exit_code != 0 and "field holdout" in str(refused.exception)
    done = cli(ws, "strategies", "draft", S, "--file", str(path), "--note", "bigger control", user="ana", token=ana)
    assert done.exit_code == 0 and "version 1" in done.output, done.output
    assert cli(ws, "strategies", "submit", S, "1", user="ana", token=ana).exit_code == 0
    own = cli(ws, "strategies", "approve", S, "1", user="ana", token=ana)
    assert isinstance(own.exception, PermissionDenied), own.output   # the maker holds no approver role
    ok = cli(ws, "strategies", "approve", S, "1", "--comment", "ok", user="chk", token=chk)
    assert ok.exit_code == 0 and "approved" in ok.output, ok.output
    listed = cli(ws, "strategies", "versions", S, "--json", user="ana", token=ana)
    info = json.loads(listed.output)
    assert info["live"] == {"head_office": 1} and [v["status"] for v in info["versions"]] == ["baseline", "approved"]
    the_map = json.loads(cli(ws, "strategies", "--json", user="ana", token=ana).output)
    assert next(s for s in the_map["strategies"] if s["id"] == S)["holdout"] == "25%"
    diff = cli(ws, "strategies", "diff", S, "0", "1", user="ana", token=ana).output
    assert "+holdout: 0.25" in diff
    back = cli(ws, "strategies", "revert", S, "0", user="ana", token=ana)
    assert back.exit_code == 0 and "version 2" in back.output and "submitted" in back.output
    assert cli(ws, "strategies", "approve", S, "2", user="chk", token=chk).exit_code == 0
    info = json.loads(cli(ws, "strategies", "versions", S, "--json", user="ana", token=ana).output)
    assert info["live"] == {"head_office": 2}
    assert [v["status"] for v in info["versions"]] == ["baseline", "reverted", "approved"]
    assert "holdout: 0.25" not in cli(ws, "strategies", "diff", S, "0", "2", user="ana", token=ana).output
