"""The strategy map editor on the web (maker-checker, 一行一策): an analyst drafts and submits, the author cannot
approve, an approver (who lands on the map) approves; an RM may not edit; a branch manager drafts their
branch's variant, and another branch's manager gets the same answer for it as for a version that does not exist."""

from __future__ import annotations

import yaml

from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures
from tests.web_world import bank, client_for, csrf_now, sign_in  # noqa: F401 - fixture

S = "birthday_care"


def signed(ws, clock, user, home="/strategies"):
    http = client_for(ws, clock)
    http.__enter__()
    assert sign_in(http, user).status_code == 303
    return http, {"X-CSRF-Token": csrf_now(http, home)}


def test_draft_submit_and_a_second_person_approves_and_the_author_cannot(bank):
    ws, clock = bank
    ana, h = signed(ws, clock, "analyst")
    page = ana.get("/strategies")
    assert page.status_code == 200 and S in page.text and 'id="nav-strategies"' in page.text
    assert ana.get(f"/strategies/{S}/edit").status_code == 200
    base = next(v for v in ana.get(f"/api/strategies/{S}").json()["versions"] if v["version"] == 0)
    data = yaml.safe_load(base["definition"])
    # a draft is validated like every rule: the answer names the field
    bad = ana.post(f"/api/strategies/{S}/preview", headers=h,
                   json={"definition": yaml.safe_dump({**data, "holdout": 1.5}, allow_unicode=True)})
    assert bad.status_code == 200 and bad.json()["valid"] is False
    unsaved = ana.post(f"/api/strategies/{S}/drafts", headers=h,
                       json={"definition": yaml.safe_dump({**data, "holdout": 1.5}, allow_unicode=True)})
    assert unsaved.json()["saved"] is False and unsaved.json()["problems"][0]["field"] == "holdout"
    assert [p["field"] for p in bad.json()["problems"]] == ["holdout"]
    fragment = ana.post(f"/strategies/{S}/preview", headers=h, data={
        "definition": base["definition"], "holdout": "0.3"})
    assert fragment.status_code == 200 and 'id="check-valid"' in fragment.text
    saved = ana.post(f"/strategies/{S}/drafts", headers=h, data={"definition": base["definition"], "holdout": "0.3",
                                                                 "note": "a bigger control group"})
    assert saved.status_code == 303
    versions = ana.get(f"/api/strategies/{S}").json()
    v1 = next(v for v in versions["versions"] if v["version"] == 1)
    assert (v1["status"], v1["author"], yaml.safe_load(v1["definition"])["holdout"]) == ("draft", "analyst", 0.3)
    assert ana.post(f"/api/strategies/{S}/versions/1/submit", headers=h).json()["status"] == "submitted"
    again = ana.post(f"/api/strategies/{S}/versions/1/submit", headers=h)
    assert again.status_code == 409 and "is submitted" in again.json()["error"]
    # the maker is no checker: no approver role, and refused
    assert ana.post(f"/api/strategies/{S}/versions/1/approve", headers=h).status_code == 403
    diff = ana.get(f"/api/strategies/{S}/diff", params={"before": 0, "after": 1}).json()["diff"]
    assert "-holdout: " in diff and "+holdout: 0.3" in diff
    ana.__exit__(None, None, None)

    with client_for(ws, clock) as checker:
        landed = sign_in(checker, "approver")
        assert landed.headers["location"] == "/strategies"
        page = checker.get(f"/strategies/{S}")
        assert 'class="approve"' in page.text
        token = csrf_now(checker, f"/strategies/{S}")
        # a rejection says what to change: without a comment it is refused (409), the version still submitted
        assert checker.post(f"/strategies/{S}/versions/1/reject", data={"csrf": token}).status_code == 409
        done = checker.post(f"/strategies/{S}/versions/1/approve", data={"csrf": token, "comment": "同意"})
        assert done.status_code == 303
        info = checker.get(f"/api/strategies/{S}").json()
        assert info["live"] == {"head_office": 1}
        row = next(v for v in info["versions"] if v["version"] == 1)
        assert (row["status"], row["decided_by"], row["comment"]) == ("approved", "approver", "同意")


def test_an_rm_may_not_edit_and_a_branch_manager_edits_only_their_branchs_variant(bank):
    ws, clock = bank
    with client_for(ws, clock) as rm:
        sign_in(rm, "rm1")
        token = csrf_now(rm, "/worklist")
        assert rm.get("/api/strategies").status_code == 403
        assert rm.get(f"/strategies/{S}/edit").status_code == 403
        assert rm.post(f"/api/strategies/{S}/drafts", headers={"X-CSRF-Token": token},
                       json={"definition": "id: x"}).status_code == 403
    bm1, h1 = signed(ws, clock, "bm1")
    text = next(v for v in bm1.get(f"/api/strategies/{S}").json()["versions"] if v["version"] == 0)["definition"]
    mine = bm1.post(f"/api/strategies/{S}/drafts", headers=h1, json={"definition": text})
    assert mine.status_code == 200 and mine.json()["saved"] and mine.json()["branch_id"] == "B01"
    version = mine.json()["version"]
    # head office's own version is not a branch manager's to draft
    assert bm1.post(f"/api/strategies/{S}/drafts", headers=h1, json={"definition": text, "branch": "B02"}
                    ).status_code == 404
    bm1.__exit__(None, None, None)
    bm2, h2 = signed(ws, clock, "bm2")
    theirs = bm2.post(f"/api/strategies/{S}/versions/{version}/submit", headers=h2)
    unknown = bm2.post(f"/api/strategies/{S}/versions/999/submit", headers=h2)
    assert (theirs.status_code, theirs.content) == (unknown.status_code, unknown.content) == (404, unknown.content)
    assert all(v["branch_id"] != "B01" for v in bm2.get(f"/api/strategies/{S}").json()["versions"])
    page, none = bm2.get(f"/strategies/{S}/edit?version={version}"), bm2.get(f"/strategies/{S}/edit?version=999")
    assert (page.status_code, page.content) == (none.status_code, none.content) == (404, none.content)
    bm2.__exit__(None, None, None)
