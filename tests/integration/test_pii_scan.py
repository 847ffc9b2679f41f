"""A PII scan of everything Lifeloop writes (data-protection issue, "done when").

A small simulated bank runs the loop for a few days through every kind of channel — SMS to a webhook gateway on
127.0.0.1 (its bodies captured), pushes to the simulated bank, call lists exported per relationship manager
(approved by a second person), RM worklists — then the report is written and the audit log exported. Every file
in the workspace (the lake's Parquet read *without* the key, the operations database, exports, worklists, the
report, logs, ``_runs.jsonl``, the audit export) and every webhook body is scanned for the simulated customers'
mobiles, ID numbers, card numbers, e-mails and names. The bank's own extracts (Lifeloop's input) are not scanned,
except the contact file Lifeloop writes into them.

The outputs a role is entitled to — an RM's own call list and worklist, which show names and mobiles of that RM's
customers — are listed in ENTITLED and checked to hold only that RM's customers. Anything else with a plaintext
hit fails the test, naming the file and the kind of value (never the value).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeloop.context import Context
from lifeloop.data.access import Grant, Principal
from lifeloop.execution.closed_loop import run_loop

pytestmark = pytest.mark.slow

# what a role may see in plaintext, by path pattern relative to the workspace, with the reason
ENTITLED = {
    r"^exports/call/[^/]+/RM\w+/[^/]+\.(csv|xlsx)$": "an RM's own call list (recipient_role rm): names and mobiles "
                                                    "of their own customers, approved by a second person",
    r"rm-worklist\.(csv|xlsx)$": "the RM's own worklist, exported by the RM (audited)",
}
NOT_SCANNED = ("extracts/", "keys/")     # the bank's own extracts (input); the keys folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """An SMS gateway on 127.0.0.1 that accepts every POST and keeps its body."""

    def __init__(self) -> None:
        bodies: list[bytes] = []
        self.bodies = bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                raw = json.dumps({"id": str(len(bodies))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


CHANNELS = """\
version: 1
language: zh
batch_size: 500
max_attempts: 3
replay_at: "19:00"
channels:
  sms: {{kind: webhook, url: "{url}", timeout_seconds: 5}}
  push: {{kind: simulator, bank: extracts}}
  email: {{kind: simulator, bank: extracts}}
  wechat: {{kind: simulator, bank: extracts}}
  call: {{kind: file, folder: exports, format: csv, recipient_role: rm}}
  branch: {{kind: file, folder: exports, format: xlsx, recipient_role: analyst}}
  rm: {{kind: worklist, due_in_days: 3}}
approvals:
  max_contacts_per_strategy: 100000
  max_contacts_per_day: 100000
  approvers: []
"""


# ---------------------------------------------------------------------------- what to look for
def _needles(extracts: Path) -> dict[str, dict[str, str]]:
    """kind -> {value: customer_id} for the simulated customers' personal values."""
    import pyarrow.parquet as pq

    customers = pq.read_table(extracts / "customers.parquet").to_pylist()
    holdings = pq.read_table(extracts / "holdings.parquet", columns=["account_id", "customer_id"])
    out: dict[str, dict[str, str]] = {"mobile": {}, "id_number": {}, "email": {}, "name": {}, "card": {}}
    for c in customers:
        for kind in ("mobile", "id_number", "email"):
            if c.get(kind):
                out[kind][str(c[kind])] = c["customer_id"]
        # names of three characters or more: two-character names collide with ordinary words
        if c.get("name") and len(c["name"]) >= 3:
            out["name"][c["name"]] = c["customer_id"]
    for account, customer in zip(holdings["account_id"].to_pylist(), holdings["customer_id"].to_pylist(),
                                 strict=True):
        if account and account.isdigit() and len(account) >= 13:
            out["card"][account] = customer
    assert all(out[k] for k in ("mobile", "id_number", "name", "card")), {k: len(v) for k, v in out.items()}
    return out


DIGITS = re.compile(r"\d{11,19}X?|\d{17}[Xx]")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
CJK = re.compile(r"[\u4e00-\u9fff]{3,}")


def _hits(text: str, needles: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """kind -> the customer ids whose values appear in ``text``."""
    found: dict[str, set[str]] = {}
    for token in DIGITS.findall(text):
        for kind in ("mobile", "id_number", "card"):
            if token in needles[kind]:
                found.setdefault(kind, set()).add(needles[kind][token])
    for token in EMAIL.findall(text):
        if token in needles["email"]:
            found.setdefault("email", set()).add(needles["email"][token])
    names = needles["name"]
    for run in CJK.findall(text):
        for size in (3, 4):
            for i in range(len(run) - size + 1):
                if run[i:i + size] in names:
                    found.setdefault("name", set()).add(names[run[i:i + size]])
    return found


def _texts(path: Path) -> Iterator[str]:
    """What a reader without the key can get out of a file: its bytes as text, and for Parquet the values of
    every column readable without decryption, for Excel every cell."""
    raw = path.read_bytes()
    yield raw.decode("utf-8", errors="ignore")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except Exception:   # an encrypted footer: nothing to read without the key
            return
        for name in names:
            try:
                column = pq.read_table(path, columns=[name]).column(0)
            except Exception:   # an encrypted column: unreadable without its key, which is the point
                continue
            yield "\n".join(str(v) for v in column.to_pylist() if v is not None)
    elif path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True)
        for sheet in book.worksheets:
            yield "\n".join(str(v) for row in sheet.iter_rows(values_only=True) for v in row if v is not None)


def _scan(root: Path, needles) -> dict[str, dict[str, set[str]]]:
    found: dict[str, dict[str, set[str]]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(NOT_SCANNED) and not rel.startswith("extracts/_inbox/"):
            continue
        hits: dict[str, set[str]] = {}
        for text in _texts(path):
            for kind, ids in _hits(text, needles).items():
                hits.setdefault(kind, set()).update(ids)
        if hits:
            found[rel] = hits
    return found


# ---------------------------------------------------------------------------- the run
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("pii")
    with Gateway() as gateway:
        ctx = Context.init(root / "ws")
        ws = ctx.workspace
        (ctx.config_dir / "channels.yaml").write_text(CHANNELS.format(url=gateway.url), encoding="utf-8")
        extracts = ws / "extracts"
        sim = ctx.simulate(extracts, customers=1200, days=120, seed=5)
        needles = _needles(extracts)
        ctx.ingest(extracts, as_of=sim.as_of)
        ctx.run(sim.as_of)
        ctx.add_user("approver1", roles=["approver"])
        days = run_loop(ctx, extracts, sim.as_of, 2)
        last = days[-1].bank_day if days else sim.as_of
        # the RM call lists wait for a second person; the approver releases them and the next dispatch sends
        with Context(ws, principal=Principal("approver1", "approver", (Grant("approver"),))) as approver:
            for request in approver.approval_requests():
                approver.decide_approval(request["as_of"], approve=True, reason="PII scan: release the call lists")
        for day in sorted({r["as_of"] for r in ctx.approval_requests(pending_only=False)}):
            ctx.dispatch(day)
        rm = _an_rm_with_tasks(ctx, last)
        ctx.add_user("rm1", roles=[f"rm={rm}"])
        with Context(ws, principal=Principal("rm1", "rm", (Grant("rm", rm),))) as rm_ctx:
            rm_ctx.export_worklist(ws / "rm-worklist.csv")
        from io import StringIO

        from rich.console import Console

        from lifeloop.cli.report import report_command

        report_command(ctx, Console(file=StringIO()), ws / "report.html", last, None, interim=True)
        ctx.audit_export(last - dt.timedelta(days=400), last + dt.timedelta(days=400), ws / "audit-export.jsonl")
        owners = _owners(extracts)
        ctx.close()
        bodies = list(gateway.bodies)
    return {"ws": ws, "needles": needles, "bodies": bodies, "rm": rm, "owners": owners}


def _an_rm_with_tasks(ctx, day) -> str:
    from lifeloop.store.ops.models import Task

    with ctx.ops()() as session:
        rms = [r for (r,) in session.query(Task.rm_id).distinct()]
    assert rms, "no RM task was created: the scan would not cover worklists"
    return sorted(rms)[0]


def _owners(extracts: Path) -> dict[str, str | None]:
    """customer -> their RM, from the bank's own extract."""
    import pyarrow.parquet as pq

    table = pq.read_table(extracts / "customers.parquet", columns=["customer_id", "rm_id"]).to_pydict()
    return dict(zip(table["customer_id"], table["rm_id"], strict=True))


def test_webhook_bodies_carry_no_personal_value(world):
    assert world["bodies"], "the SMS gateway received nothing: the scan would not cover webhook bodies"
    leaks = {kind: len(ids) for body in world["bodies"]
             for kind, ids in _hits(body.decode("utf-8"), world["needles"]).items()}
    assert leaks == {}


def test_no_plaintext_personal_value_in_any_file_but_the_outputs_a_role_is_entitled_to(world):
    found = _scan(world["ws"], world["needles"])
    entitled = {rel: hits for rel, hits in found.items() if any(re.search(p, rel) for p in ENTITLED)}
    leaks = {rel: sorted(hits) for rel, hits in found.items() if rel not in entitled}
    assert leaks == {}, f"plaintext personal data outside the entitled outputs: {leaks}"
    # the entitled outputs exist (else this test proves less than it says) and hold only the RM's own customers
    assert entitled, "no RM call list or worklist was written: nothing entitled was checked"
    owners = world["owners"]
    for rel, hits in entitled.items():
        # a call list is filed under its RM's folder (exports/call/DAY/RM_ID/...); the worklist is the RM's own
        folders = [part for part in Path(rel).parts[:-1] if part.startswith("RM")]
        expected_rm = folders[-1] if folders else world["rm"]
        customers = set().union(*hits.values())
        assert set(hits) <= {"name", "mobile"}, f"{rel} shows {sorted(hits)}: only names and mobiles are due"
        assert {owners.get(c) for c in customers} <= {expected_rm}, f"{rel} holds another RM's customers"


def test_the_scan_finds_a_planted_value(world, tmp_path):
    """The scan itself can fail: a mobile and a card number planted in a copy of a log are found."""
    mobile, customer = next(iter(world["needles"]["mobile"].items()))
    card = next(iter(world["needles"]["card"]))
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "_runs.jsonl").write_text(json.dumps({"note": f"called {mobile} about {card}"}))
    assert _scan(tmp_path, world["needles"]) == {"lake/_runs.jsonl": {"mobile": {customer},
                                                                      "card": {world["needles"]["card"][card]}}}
