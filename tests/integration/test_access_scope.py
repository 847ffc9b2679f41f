"""Broken object-level authorisation, tried and refused: on a small simulated bank, two branches of three RMs
each. An RM asking for another RM's customer (profile, why, consent, unmask), worklist or export gets the very
refusal an unknown id gets; a branch manager sees their branch only; head office sees every customer, masked."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa

from lifeloop.context import Context
from lifeloop.data.access import Grant, PermissionDenied, Principal
from lifeloop.errors import NotFoundError
from lifeloop.execution.bank_customers import BankCustomers
from lifeloop.store.ops import tasks
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import AuditEntry

pytestmark = pytest.mark.slow     # one simulated bank, run to its plan (about 30 s), shared by the module


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("scope")
    ctx = Context.init(root / "ws", principal=Principal.system("tests"))
    sim = ctx.simulate(root / "extracts", customers=240, days=45, seed=3)
    ctx.ingest(root / "extracts", as_of=sim.as_of)
    ctx.run(sim.as_of, ["features", "lifecycle", "segments", "clusters", "audiences", "plan"])
    owners = BankCustomers(ctx.lake).owners
    books: dict[str, list[str]] = collections.defaultdict(list)
    for customer, (rm, _) in sorted(owners.items()):
        if rm:
            books[rm].append(customer)
    by_branch: dict[str, list[str]] = collections.defaultdict(list)
    for rm in sorted(books):
        by_branch[owners[books[rm][0]][1]].append(rm)
    branches = sorted(b for b, rms in by_branch.items() if len(rms) >= 3)[:2]
    assert len(branches) == 2, "the simulated bank needs two branches of three RMs with customers"
    rms = {b: by_branch[b][:3] for b in branches}
    with unit_of_work(ctx.ops()) as s:          # one open task per customer of the six RMs
        for b in branches:
            for rm in rms[b]:
                for i, customer in enumerate(books[rm]):
                    tasks.create_task(s, rm_id=rm, customer_id=customer, title=f"call {customer}",
                                      due_on=sim.as_of, priority=50 - i)
    yield {"ctx": ctx, "as_of": sim.as_of, "branches": branches, "rms": rms, "books": books, "owners": owners}
    ctx.close()


@pytest.fixture(scope="module")
def world(bank):
    """Contexts of the same workspace for each RM, each branch manager, an analyst, compliance and an admin."""
    ws, opened = bank["ctx"].workspace, []

    def as_(user, *grants, clock=None):
        ctx = Context(ws, principal=Principal(user, user, tuple(grants)), clock=clock)
        opened.append(ctx)
        return ctx

    people = {rm: as_(f"u_{rm}", Grant("rm", rm)) for b in bank["branches"] for rm in bank["rms"][b]}
    people.update({f"bm_{b}": as_(f"bm_{b}", Grant("branch_manager", b)) for b in bank["branches"]})
    people.update(analyst=as_("ana", Grant("analyst")), compliance=as_("cmp", Grant("compliance")),
                  admin=as_("adm", Grant("admin")), approver=as_("apr", Grant("approver")))
    people["as_"] = as_
    yield people
    for ctx in opened:
        ctx.close()


def refusal(call, ident):
    """The refusal ``call(ident)`` raises, as a user would see it, with the id asked for written as <id>."""
    with pytest.raises(NotFoundError) as err:
        call(ident)
    return type(err.value), err.value.render().replace(ident, "<id>"), err.value.exit_code


def unknown_like(ident):
    """An id that does not exist but spells like ``ident`` (case changed): the "did you mean" over the asker's
    own scope is then the same for both, so the two refusals can be compared byte for byte."""
    return ident.lower()


def test_an_rm_gets_the_same_refusal_for_another_rms_customer_as_for_an_unknown_one(bank, world):
    (b1, b2), rms, books, as_of = bank["branches"], bank["rms"], bank["books"], bank["as_of"]
    me = world[rms[b1][0]]
    assert me.customer(books[rms[b1][0]][0])["attributes"]["customer_id"] == books[rms[b1][0]][0]
    for other in (books[rms[b1][1]][0], books[rms[b2][0]][0]):     # same branch, other branch
        missing = unknown_like(other)
        assert missing not in bank["owners"]
        for name, call in (("customer", lambda c: me.customer(c)), ("why", lambda c: me.why(c, as_of)),
                           ("consent", lambda c: me.consent(c)),
                           ("unmask", lambda c: me.unmask(c, reason="case 1", fields=["id_number"])),
                           ("consent change", lambda c: me.change_consent(c, granted=False, channel="sms",
                                                                          purpose="marketing", source="rm",
                                                                          reason="asked"))):
            theirs = refusal(call, other)
            assert theirs == refusal(call, missing), name
            assert theirs[0] is NotFoundError and "among those you may see" in theirs[1]
    # every refused attempt is on the audit log, an unknown id alike (PCI DSS 10.2.4)
    with unit_of_work(me.ops()) as s:
        refused = s.execute(sa.select(AuditEntry.target_id, AuditEntry.result, AuditEntry.details)
                            .where(AuditEntry.actor == me.operator, AuditEntry.action == "access.refused")).all()
    assert len(refused) == 2 * 2 * 5 and {r for _, r, _ in refused} == {"refused"}
    assert {t for t, *_ in refused} == {books[rms[b1][1]][0], books[rms[b2][0]][0]} | \
        {unknown_like(books[rms[b1][1]][0]), unknown_like(books[rms[b2][0]][0])}
    assert {d["permission"] for *_, d in refused} == {"customer.read", "why.read", "consent.read", "customer.unmask",
                                                       "consent.change"}


def test_an_rm_cannot_read_or_export_another_rms_worklist_and_the_refusal_is_that_of_an_unknown_rm(bank, world,
                                                                                               tmp_path):
    (b1, b2), rms = bank["branches"], bank["rms"]
    me = world[rms[b1][0]]
    mine = me.worklist()
    assert mine and {r["customer_id"] for r in mine} == set(bank["books"][rms[b1][0]])
    assert me.worklist(rms[b1][0]) == mine
    for other in (rms[b1][1], rms[b2][0]):
        missing = unknown_like(other)
        assert refusal(me.worklist, other) == refusal(me.worklist, missing)
        export = lambda rm: me.export_worklist(tmp_path, rm)      # noqa: E731
        assert refusal(export, other) == refusal(export, missing)
    assert list(tmp_path.iterdir()) == []       # nothing was written for a refused export


def test_a_branch_manager_sees_their_branch_and_nothing_of_the_other(bank, world):
    (b1, b2), rms, books = bank["branches"], bank["rms"], bank["books"]
    manager = world[f"bm_{b1}"]
    for rm in rms[b1]:
        p = manager.customer(books[rm][0])
        assert "customers.name" not in p["access"]["masked"]           # their branch, as an RM sees a book
        assert {r["customer_id"] for r in manager.worklist(rm)} == set(books[rm])
    other_customer, other_rm = books[rms[b2][0]][0], rms[b2][0]
    assert refusal(manager.customer, other_customer) == refusal(manager.customer, unknown_like(other_customer))
    assert refusal(manager.worklist, other_rm) == refusal(manager.worklist, unknown_like(other_rm))
    with pytest.raises(NotFoundError, match="is not a relationship manager"):
        manager.worklist()                                          # a manager names the RM


def test_lists_and_audiences_read_through_context_hold_only_customers_in_scope(bank, world):
    (b1, _), rms, owners = bank["branches"], bank["rms"], bank["owners"]
    everyone = world["analyst"].lists(bank["as_of"])
    assert everyone.num_rows == bank["ctx"].lists(bank["as_of"]).num_rows > 0
    seen = 0
    for who, covers in ((rms[b1][0], lambda c: owners[c][0] == rms[b1][0]),
                        (f"bm_{b1}", lambda c: owners[c][1] == b1)):
        for area in ("lists", "audiences", "features", "lifecycle", "segments"):
            every = getattr(world["analyst"], area)(bank["as_of"])["customer_id"].to_pylist()
            mine = getattr(world[who], area)(bank["as_of"])["customer_id"].to_pylist()
            assert mine == [c for c in every if covers(c)] and len(mine) < len(every), (who, area)
            seen += len(mine)
    assert seen > 0          # the branch's customers are in the day's audiences: the filter kept them
    with pytest.raises(PermissionDenied, match="user apr may not read the lists"):
        world["approver"].lists(bank["as_of"])
    with pytest.raises(PermissionDenied, match="user apr may not read the features"):
        world["approver"].features(bank["as_of"])


def test_head_office_sees_every_customer_masked_and_an_rm_sees_their_own_unmasked_but_the_id_number(bank, world):
    (b1, b2), rms, books = bank["branches"], bank["rms"], bank["books"]
    own = books[rms[b1][0]][0]
    rm_view = world[rms[b1][0]].customer(own)["attributes"]
    for who in ("analyst", "compliance", "admin"):
        for customer in (own, books[rms[b2][2]][0]):
            p = world[who].customer(customer)
            assert {"customers.name", "customers.mobile", "customers.id_number"} <= set(p["access"]["masked"])
    head = world["analyst"].customer(own)["attributes"]
    assert head["name"] != rm_view["name"] and "*" in head["name"] and "*" in head["mobile"]
    assert "*" not in rm_view["mobile"] and "*" in rm_view["id_number"]
    assert len(world["analyst"].worklist(rms[b2][1])) == len(books[rms[b2][1]])       # head office: any RM


def test_an_unmask_grant_shows_the_fields_until_it_expires_and_every_view_under_it_is_audited(bank, world):
    (b1, _), rms, books = bank["branches"], bank["rms"], bank["books"]
    customer = books[rms[b1][1]][0]
    now = [dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)]
    officer = world["as_"]("cmp2", Grant("compliance"), clock=lambda: now[0])
    masked = officer.customer(customer)["attributes"]
    granted = officer.unmask(customer, reason="complaint 2030-7", fields=["id_number", "mobile"], minutes=15)
    assert granted["until"] == now[0] + dt.timedelta(minutes=15)
    now[0] += dt.timedelta(minutes=10)
    shown = officer.customer(customer)["attributes"]
    assert "*" not in shown["id_number"] and "*" not in shown["mobile"] and shown["name"] == masked["name"]
    now[0] += dt.timedelta(minutes=5)                     # the grant has run out
    assert officer.customer(customer)["attributes"] == masked
    with unit_of_work(officer.ops()) as s:
        rows = s.execute(sa.select(AuditEntry.action, AuditEntry.target_id, AuditEntry.reason, AuditEntry.details)
                         .where(AuditEntry.actor == "cmp2").order_by(AuditEntry.id)).all()
    assert [(a, t) for a, t, *_ in rows] == [("customer.unmask", customer), ("customer.view_unmasked", customer)]
    assert rows[0][2] == "complaint 2030-7" and rows[0][3]["fields"] == ["id_number", "mobile"]
    assert rows[0][3]["until"] == "2030-01-01T09:15:00+00:00" and rows[1][3] == {"fields": ["id_number", "mobile"]}


def test_an_rm_may_unmask_only_the_id_number_of_their_own_customer_and_nobody_without_a_reason(bank, world):
    (b1, _), rms, books = bank["branches"], bank["rms"], bank["books"]
    rm = world[rms[b1][2]]
    own = books[rms[b1][2]][0]
    with pytest.raises(PermissionDenied, match="your roles may unmask only id_number"):
        rm.unmask(own, reason="case", fields=["name"])
    with pytest.raises(PermissionDenied, match="say why"):
        world["compliance"].unmask(own, reason="  ", fields=["mobile"])
    with pytest.raises(PermissionDenied, match=r"--minutes must be 1\.\.60"):
        world["compliance"].unmask(own, reason="case", minutes=600)
    with pytest.raises(PermissionDenied, match="user ana may not unmask personal data"):
        world["analyst"].unmask(own, reason="case")
    assert rm.unmask(own, reason="account opening check")["fields"] == ["id_number"]
    attributes = rm.customer(own)["attributes"]
    assert "*" not in attributes["id_number"]


def test_a_worklist_export_is_scoped_masked_for_the_viewer_and_audited_with_its_sha256(bank, world, tmp_path):
    (b1, _), rms = bank["branches"], bank["rms"]
    rm_id = rms[b1][0]
    mine = world[rm_id].export_worklist(tmp_path)                  # a folder: the file is named from safe parts
    assert mine["path"].parent == tmp_path and mine["path"].name.startswith(f"worklist-{rm_id}-")
    assert mine["sha256"] == hashlib.sha256(mine["path"].read_bytes()).hexdigest()
    head = world["analyst"].export_worklist(tmp_path / "hq.csv", rm_id)
    rm_text, hq_text = mine["path"].read_text(encoding="utf-8"), head["path"].read_text(encoding="utf-8")
    assert mine["rows"] == head["rows"] == len(bank["books"][rm_id]) == rm_text.count("\n") - 1
    names = [r["name"] for r in world[rm_id].worklist() if r["name"]]
    assert names and all(n in rm_text for n in names) and not any(n in hq_text for n in names)
    with pytest.raises(PermissionDenied, match="user cmp may not export worklists"):
        world["compliance"].export_worklist(tmp_path / "c.csv", rm_id)
    with unit_of_work(world["analyst"].ops()) as s:
        entries = s.execute(sa.select(AuditEntry.actor, AuditEntry.target_id, AuditEntry.details)
                            .where(AuditEntry.action == "worklist.export").order_by(AuditEntry.id)).all()
    assert [(a, t, d["file"], d["sha256"], d["rows"], d["masked_as"]) for a, t, d in entries] == [
        (f"u_{rm_id}", rm_id, mine["path"].name, mine["sha256"], mine["rows"], "rm"),
        ("ana", rm_id, "hq.csv", head["sha256"], head["rows"], "analyst")]


def test_state_changes_need_a_permission_from_the_matrix(bank, world):
    as_of = bank["as_of"]
    for who, call, what in (("analyst", lambda c: c.decide_approval(as_of, approve=True, reason="x"),
                             "approve or reject a send"),
                            ("approver", lambda c: c.run(as_of, ["features"]), "run the daily steps"),
                            ("compliance", lambda c: c.dispatch(as_of), "dispatch the day's lists"),
                            ("analyst", lambda c: c.promote_model("churn", "v1", "x"), "promote models"),
                            ("analyst", lambda c: c.audit_verify(), "verify the audit log")):
        with pytest.raises(PermissionDenied, match=what) as refused:
            call(world[who])
        assert refused.value.exit_code == 2
