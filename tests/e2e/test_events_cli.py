"""``lifeloop events ingest / decisions / token-hash`` as a user runs them (SQLite workspace)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.realtime_world import D, build_workspace, local, salary

LIFELOOP = [sys.executable, "-m", "lifeloop.cli"]


def run(*args):
    return subprocess.run([*LIFELOOP, *args], capture_output=True, text=True, timeout=180)


@pytest.mark.slow   # five CLI processes: about 30 s on a quiet machine
def test_ingest_stores_decides_and_names_a_bad_row(tmp_path):
    ws = build_workspace(tmp_path, customers=3, day=D)
    good = tmp_path / "salary.jsonl"
    events = [salary(i, f"C{i:06d}", local(D, 10)) for i in range(3)]
    good.write_text("\n".join(json.dumps(e) for e in [*events, events[0]]) + "\n", encoding="utf-8")
    result = run("--workspace", str(ws), "events", "ingest", str(good))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "salary.jsonl: 3 events stored, 1 duplicates (already stored: nothing changed)"
    assert lines[1].startswith("decided 3 events: 3 moments fired;")
    again = run("--workspace", str(ws), "events", "ingest", str(good))
    assert again.stdout.splitlines()[0] == "salary.jsonl: 0 events stored, 4 duplicates (already stored: nothing " \
                                           "changed)"
    shown = run("--workspace", str(ws), "events", "decisions", "C000000")
    assert shown.returncode == 0 and "salary_care" in shown.stdout and "salary credited: 8,000.00" in shown.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(events[1] | {"event_id": "new-1"}) + "\n"
                   + json.dumps(events[2] | {"event_id": "new-2", "direction": "sideways"}) + "\n", encoding="utf-8")
    refused = run("--workspace", str(ws), "events", "ingest", str(bad))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "bad.jsonl, row 2, field direction" in refused.stderr and "none was stored" in refused.stderr
    assert run("--workspace", str(ws), "events", "token-hash", "abc").stdout.strip() == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
