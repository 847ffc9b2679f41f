"""The operations database's schema: migrations from empty, the head revision, column types, connections."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from lifeloop.errors import ConfigError
from lifeloop.store.ops import audit
from lifeloop.store.ops.database import (
    OpsDatabaseError,
    default_url,
    make_engine,
    resolve_url,
    session_factory,
    unit_of_work,
)
from lifeloop.store.ops.migrations import current, downgrade, head, require_head, upgrade, upgrade_sql
from lifeloop.store.ops.models import Base, Feedback
from tests.ops_fixtures import database_url, ops_db, session  # noqa: F401 - fixtures

TABLES = {"dispatches", "feedback", "leads", "consent_changes", "do_not_disturb", "tasks", "audit_log",
          "audit_head", "audit_archives", "idempotency_keys", "approvals", "inbound_replies",
          "users", "role_grants", "unmask_grants", "events", "moments", "moment_decisions", "timers",
          "personalisation_changes", "rights_requests", "suppressions", "marketing_suppressed", "web_sessions",
          "strategy_threads", "strategy_thread_posts", "strategy_versions"}


def test_an_empty_database_is_migrated_to_the_head_and_current_reports_it(database_url):
    assert current(database_url) is None
    assert upgrade(database_url) == head() == "0012_strategy_threads"
    assert current(database_url) == head()
    engine = make_engine(database_url)
    try:
        assert TABLES <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrading_twice_changes_nothing_and_downgrading_to_base_removes_every_table(database_url):
    upgrade(database_url)
    assert upgrade(database_url) == head()
    assert downgrade(database_url, "base") is None
    engine = make_engine(database_url)
    try:
        assert not TABLES & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert upgrade(database_url) == head()


def test_the_models_and_the_migrations_describe_the_same_schema(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_money_columns_are_numeric_18_2_and_times_are_timezone_aware_columns(database_url):
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        columns = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("feedback")}
        dispatch_columns = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("dispatches")}
    finally:
        engine.dispose()
    for money in (columns["amount"], dispatch_columns["unit_cost"]):
        assert isinstance(money, sa.Numeric) and (money.precision, money.scale) == (18, 2)
    if database_url.startswith("postgresql"):
        assert columns["occurred_at"].timezone is True  # timestamptz
        assert dispatch_columns["next_attempt_at"].timezone is True


def test_a_time_comes_back_aware_in_utc_and_an_amount_comes_back_exact(session):
    from lifeloop.store.ops import contacts, feedback

    shanghai = dt.timezone(dt.timedelta(hours=8))
    made = contacts.enqueue(session, contacts=[contacts.NewContact(dt.date(2026, 3, 2), "C1", "s", "w", "rm")],
                            now=dt.datetime(2026, 3, 2, 9, 30, tzinfo=shanghai))
    feedback.record(session, dispatch_id=made.new_ids[0], outcome="purchased", recorded_by="rm1",
                    occurred_at=dt.datetime(2026, 3, 2, 16, 0, tzinfo=shanghai), amount=Decimal("1234567890123.45"))
    session.commit()
    session.expire_all()
    row = session.scalars(sa.select(Feedback)).one()
    assert row.occurred_at == dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    assert row.occurred_at.utcoffset() == dt.timedelta(0)
    assert row.amount == Decimal("1234567890123.45") and isinstance(row.amount, Decimal)
    assert row.dispatch.created_at == dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)


def test_a_time_without_a_zone_is_refused_by_the_services_and_by_the_column_type(session):
    from lifeloop.store.ops.models import AuditEntry

    naive = dt.datetime(2026, 3, 2, 9, 30)
    with pytest.raises(ValueError, match="has no time zone"):
        audit.record(session, actor="a", action="b", at=naive)
    session.add(AuditEntry(actor="a", action="b", at=naive))
    with pytest.raises(sa.exc.StatementError, match="has no time zone"):
        session.flush()


def test_an_amount_with_more_than_two_decimals_is_refused(session):
    from lifeloop.store.ops import contacts

    with pytest.raises(sa.exc.StatementError, match="more than 2 decimals"):
        contacts.enqueue(session, contacts=[contacts.NewContact(dt.date(2026, 3, 2), "C1", "s", "w", "sms",
                                                                unit_cost=Decimal("0.055"))])


def test_work_on_a_database_that_was_never_migrated_is_refused_with_what_to_do(database_url):
    with pytest.raises(OpsDatabaseError, match="no Lifeloop tables") as caught:
        require_head(database_url)
    assert "lifeloop db upgrade" in caught.value.hint
    upgrade(database_url)
    require_head(database_url)


def test_the_sqlite_default_lives_in_the_workspace_with_wal_and_foreign_keys(tmp_path):
    url = resolve_url(tmp_path)
    assert url == default_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'ops.db'}"
    assert resolve_url(tmp_path, configured="sqlite:///data/ops.db") == \
        f"sqlite:///{tmp_path.resolve() / 'data' / 'ops.db'}"
    assert resolve_url(tmp_path, setting="postgresql://u@h/db", configured="sqlite:///x.db") == \
        "postgresql+psycopg://u@h/db"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_an_unreachable_postgresql_is_an_error_that_names_it_and_says_what_to_check():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://lifeloop:secret@127.0.0.1:{port}/ops"
    with pytest.raises(OpsDatabaseError) as caught:
        current(url)
    text = caught.value.render()
    assert f"127.0.0.1:{port}/ops" in text and "secret" not in text
    assert "database_url" in caught.value.hint


def test_an_unsupported_database_url_is_a_config_error():
    with pytest.raises(ConfigError, match="mysql is not supported"):
        make_engine("mysql://u@h/db")


def test_a_dba_can_review_the_postgresql_sql_including_the_audit_triggers():
    sql = upgrade_sql("postgresql://dba@db.bank.internal/lifeloop")
    assert "CREATE TABLE dispatches" in sql and "NUMERIC(18, 2)" in sql
    assert "BEFORE UPDATE OR DELETE ON audit_log" in sql and "BEFORE TRUNCATE ON audit_log" in sql


def test_a_unit_of_work_commits_on_success_and_rolls_back_on_error(ops_db):
    with unit_of_work(ops_db) as s:
        audit.record(s, actor="lead", action="kept")
    with pytest.raises(RuntimeError):
        with unit_of_work(ops_db) as s:
            audit.record(s, actor="lead", action="lost")
            raise RuntimeError("boom")
    with ops_db() as s:
        assert [e.action for e in audit.entries(s)] == ["kept"]


def test_a_session_factory_accepts_an_engine_or_a_url(database_url):
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0
    finally:
        engine.dispose()


def test_opening_the_embedded_sqlite_migrates_it_but_a_shared_postgresql_must_be_upgraded_on_purpose(database_url):
    from lifeloop.store.ops import open_ops

    if database_url.startswith("sqlite"):
        factory = open_ops(database_url)
        factory.kw["bind"].dispose()
        assert current(database_url) == head()
    else:
        with pytest.raises(OpsDatabaseError, match="no Lifeloop tables"):
            open_ops(database_url)
        upgrade(database_url)
        open_ops(database_url).kw["bind"].dispose()


def test_a_database_migrated_by_a_newer_lifeloop_is_refused_and_left_alone(database_url):
    from lifeloop.store.ops import open_ops

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(OpsDatabaseError, match="does not know") as caught:
        open_ops(database_url, auto_upgrade=True)
    assert "newer Lifeloop" in caught.value.hint
    assert current(database_url) == "9999"


def test_the_contact_ledger_migration_counts_what_was_already_sent_or_in_flight_on_its_lists_date(database_url):
    upgrade(database_url, "0001")
    factory = session_factory(database_url)
    now = dt.datetime(2026, 3, 2, 2, tzinfo=dt.UTC)
    dispatches = sa.table("dispatches", *(sa.column(c) for c in (
        "idempotency_key", "as_of", "customer_id", "strategy_id", "wave", "channel", "purpose", "status", "attempts",
        "max_attempts", "next_attempt_at", "created_at", "updated_at")))
    with factory.begin() as s:
        for key, status in (("k1", "sent"), ("k2", "claimed"), ("k3", "pending"), ("k4", "blocked")):
            s.execute(dispatches.insert().values(
                idempotency_key=key, as_of=dt.date(2026, 3, 1), customer_id="C1", strategy_id=key, wave="w",
                channel="sms", purpose="marketing", status=status, attempts=1, max_attempts=5,
                next_attempt_at=now, created_at=now, updated_at=now))
    factory.kw["bind"].dispose()
    assert upgrade(database_url) == head()
    factory = session_factory(database_url)
    with factory() as s:
        rows = s.execute(sa.text("SELECT strategy_id, contact_day FROM contact_ledger ORDER BY strategy_id")).all()
    factory.kw["bind"].dispose()
    assert [(r[0], str(r[1])) for r in rows] == [("k1", "2026-03-01"), ("k2", "2026-03-01")]
