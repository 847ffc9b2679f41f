"""Feedback import: precise errors, all or nothing, refusals remembered, referrals as leads, idempotent."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from lifeloop.errors import DataError
from lifeloop.execution.feedback_import import import_feedback
from lifeloop.store.ops import contacts as outbox
from lifeloop.store.ops import feedback
from lifeloop.store.ops.contacts import NewContact
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import Feedback, Lead
from tests.ops_fixtures import database_url, ops_db  # noqa: F401 - fixtures

D = dt.date(2024, 3, 1)
HEADER = "contact_id,contact_key,outcome,referred_name,referred_mobile,note,recorded_at,recorded_by\n"


@pytest.fixture
def sent(ops_db):
    """Three contacts that went out (call, rm, sms) and one control row that did not: their ids and keys."""
    with unit_of_work(ops_db) as s:
        new = outbox.enqueue(s, contacts=[NewContact(D, c, "retention", "w1", ch) for c, ch in
                                          (("C001", "call"), ("C002", "rm"), ("C003", "sms"), ("C004", "call"))])
        ids = new.new_ids
        items = outbox.claim_batch(s, worker="t", limit=3)
        outbox.mark_sent_many(s, claim_token=items[0].claim_token, dispatch_ids=[i.id for i in items])
        outbox.cancel(s, dispatch_ids=[ids[3]], reason="control group")
        keys = dict(s.execute(sa.select(outbox.Dispatch.id, outbox.Dispatch.idempotency_key)).all())
    return ids, keys


def write(tmp_path, text, name="feedback.csv"):
    path = tmp_path / name
    path.write_text(HEADER + text, encoding="utf-8")
    return path


def count(ops_db, model):
    with unit_of_work(ops_db) as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_good_file_records_every_outcome_remembers_refusals_and_turns_referrals_into_leads(ops_db, sent, tmp_path):
    ids, keys = sent
    path = write(tmp_path, f"{ids[0]},,refused,,,不需要,2024-03-01 10:00,cc007\n"
                           f",{keys[ids[1]]},referral,王芳,138 0000 1111,朋友想开户,2024-03-01T11:00+08:00,rm001\n"
                           f"{ids[2]},,reached,,,,2024-03-01 12:00,cc007\n")
    result = import_feedback(ops_db, path)
    assert (result.recorded, result.refusals, result.referrals, result.replayed) == (3, 1, 1, False)
    with unit_of_work(ops_db) as s:
        assert feedback.refused_within(s, customer_id="C001", months=3,
                                       now=dt.datetime(2024, 3, 2, tzinfo=dt.UTC))
        lead = s.scalars(sa.select(Lead)).one()
        assert (lead.name, lead.phone, lead.referred_by_customer_id) == ("王芳", "13800001111", "C002")
        # a time without a zone is the bank's local time (Asia/Shanghai, UTC+8)
        first = s.scalars(sa.select(Feedback).where(Feedback.dispatch_id == ids[0])).one()
        assert first.occurred_at == dt.datetime(2024, 3, 1, 2, 0, tzinfo=dt.UTC)
        assert first.source_ref == "feedback.csv:2"


def test_importing_the_same_file_again_records_nothing_more(ops_db, sent, tmp_path):
    ids, _ = sent
    path = write(tmp_path, f"{ids[0]},,reached,,,,2024-03-01 10:00,cc007\n")
    import_feedback(ops_db, path)
    again = import_feedback(ops_db, path)
    assert again.replayed and again.recorded == 1
    # a longer file with the same first row records only the new row
    longer = write(tmp_path,
                   f"{ids[0]},,reached,,,,2024-03-01 10:00,cc007\n{ids[2]},,no_answer,,,,2024-03-01 11:00,cc007\n",
                   name="feedback-2.csv")
    result = import_feedback(ops_db, longer)
    assert (result.recorded, result.skipped) == (1, 1)
    assert count(ops_db, Feedback) == 2


def test_bad_rows_are_reported_by_line_and_column_and_nothing_is_imported(ops_db, sent, tmp_path):
    ids, _ = sent
    path = write(tmp_path, f"{ids[0]},,refused,,,,2024-03-01 10:00,cc007\n"     # line 2: fine
                           f"{ids[1]},,purchsed,,,,2024-03-01 10:00,cc007\n"    # line 3: typo
                           f"99999,,reached,,,,2024-03-01 10:00,cc007\n"        # line 4: unknown contact
                           f"{ids[2]},,referral,,,,yesterday,\n"                # line 5: no name, bad time, no recorder
                           f"{ids[3]},,reached,,,,2024-03-01 10:00,cc007\n")    # line 6: control, never sent
    with pytest.raises(DataError) as caught:
        import_feedback(ops_db, path)
    err = caught.value
    assert err.message == "feedback.csv: 4 of 5 rows are invalid; nothing was imported"
    where = {(p.line, p.column) for p in err.problems}
    assert where == {(3, "outcome"), (4, "contact_id"), (5, "referred_name"), (5, "recorded_at"),
                     (5, "recorded_by"), (6, "contact_id")}
    assert "did you mean 'purchased'?" in next(p.message for p in err.problems if p.line == 3)
    assert "control-group" in next(p.message for p in err.problems if p.line == 6)
    assert count(ops_db, Feedback) == 0
    # the fixed file imports (the failed attempt did not reserve its key)
    fixed = write(tmp_path, f"{ids[0]},,refused,,,,2024-03-01 10:00,cc007\n", name="fixed.csv")
    assert import_feedback(ops_db, fixed).recorded == 1


def test_a_file_with_a_misspelt_column_is_refused_with_a_suggestion(ops_db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("contact_id,outcom,recorded_at,recorded_by\n1,reached,2024-03-01,cc\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        import_feedback(ops_db, path)
    messages = [p.message for p in caught.value.problems]
    assert "unknown column 'outcom'; did you mean 'outcome'?" in messages
    assert "required column 'outcome' is missing" in messages


def test_a_bad_referred_mobile_is_reported_masked(ops_db, sent, tmp_path):
    ids, _ = sent
    path = write(tmp_path, f"{ids[0]},,referral,王小二,1381234567x,,2024-03-01 10:00,cc007\n")
    with pytest.raises(DataError) as caught:
        import_feedback(ops_db, path)
    [p] = caught.value.problems
    assert (p.line, p.column) == (2, "referred_mobile") and "1381234567x" not in p.message
    assert p.message.startswith("mobile '138****567x' is not a phone number")

