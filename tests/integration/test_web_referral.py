"""A referral (转介) on the marketing form naming another product line and another RM of the branch: the lead is
that RM's (under their worklist, masked for other readers), the referring customer is not named to them; an RM
of another branch is refused with the bytes of an unknown one and nothing is written."""

from __future__ import annotations

import sqlalchemy as sa

from lifeloop.store.ops.models import AuditEntry, Feedback, Lead, Task
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import bank, client_for, csrf_now, sign_in, system  # noqa: F401 - fixture

REFERRAL = {"outcome": "referral", "referred_name": "王大明", "referred_mobile": "13900000009"}


def signed(ws, clock, user):
    http = client_for(ws, clock)
    http.__enter__()
    assert sign_in(http, user).status_code == 303
    return http


def test_a_referral_to_a_colleague_and_another_product_line_becomes_the_colleagues_lead(bank):
    ws, clock = bank
    http = signed(ws, clock, "rm1")
    assert 'name="referred_rm"' in http.get("/customers/C001").text
    done = http.post("/tasks/1/outcome", data={"csrf": csrf_now(http), **REFERRAL, "referred_rm": "RM002",
                                               "product_line": "wealth", "note": "想了解理财"})
    assert done.status_code == 303
    assert http.get("/api/leads").json()["leads"] == []   # it went to RM002, not to the referring RM
    http.__exit__(None, None, None)
    with system(ws, clock).ops()() as s:
        [lead] = s.scalars(sa.select(Lead)).all()
        assert (lead.name, lead.phone, lead.rm_id, lead.product_line, lead.referred_by_customer_id) == (
            "王大明", "13900000009", "RM002", "wealth", "C001")
        [fb] = s.scalars(sa.select(Feedback)).all()
        assert (fb.outcome, fb.referred_lead_id) == ("referral", lead.id)
        entry = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "feedback.record")).one()
        assert entry.details["referred_to_rm"] == "RM002" and entry.details["product_line"] == "wealth"
    http = signed(ws, clock, "rm2")
    [shown] = http.get("/api/leads").json()["leads"]
    assert (shown["name"], shown["mobile"], shown["product_line"], shown["referred_by_customer_id"]) == (
        "王大明", "13900000009", "wealth", None)   # rm1's customer is not named to rm2
    assert 'hx-get="/leads/fragment"' in http.get("/worklist").text
    assert "王大明" in http.get("/leads/fragment").text
    http.__exit__(None, None, None)
    http = signed(ws, clock, "analyst")   # head office names the RM and sees the lead masked
    [masked] = http.get("/api/leads", params={"rm": "RM002"}).json()["leads"]
    assert masked["name"] != "王大明" and masked["mobile"] != "13900000009"
    assert http.get("/leads/fragment").text == ""
    http.__exit__(None, None, None)


def test_a_referral_to_an_rm_of_another_branch_is_refused_like_an_unknown_rm_and_nothing_is_written(bank):
    ws, clock = bank
    http = signed(ws, clock, "rm1")
    token = csrf_now(http)
    other = http.post("/api/tasks/1/outcome", headers={"X-CSRF-Token": token},
                      json={**REFERRAL, "referred_rm": "RM004"})
    unknown = http.post("/api/tasks/1/outcome", headers={"X-CSRF-Token": token},
                        json={**REFERRAL, "referred_rm": "RM999"})
    assert (other.status_code, other.content) == (404, unknown.content)
    line = http.post("/api/tasks/1/outcome", headers={"X-CSRF-Token": token},
                     json={**REFERRAL, "product_line": "spaceflight"})
    assert line.status_code == 404   # the bank sells no such product line
    wrong = http.post("/api/tasks/1/outcome", headers={"X-CSRF-Token": token},
                      json={"outcome": "reached", "referred_rm": "RM002"})
    assert wrong.status_code == 422
    http.__exit__(None, None, None)
    with system(ws, clock).ops()() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Lead)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0
        assert s.get(Task, 1).status == "open"
