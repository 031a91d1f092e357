"""The analytics store: migrations from empty on SQLite and PostgreSQL, rows stored once per
source entry, UTC times, the database it picks, and Rasa's SQL event broker writing into it."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.ops.analytics.schema import METADATA
from bot.ops.analytics.store import AnalyticsError, AnalyticsStore, EventRow, database_url
from tests.conftest import ConfigFactory

#: The PostgreSQL server and ``analytics_database`` (SQLite and PostgreSQL, one test each).
pytest_plugins = ["tests.fakes.postgres"]

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(analytics_database: str) -> AnalyticsStore:
    store = AnalyticsStore(analytics_database)
    store.migrate()
    yield store
    store.close()


def test_migrations_build_the_whole_schema_from_an_empty_database(analytics_database: str) -> None:
    store = AnalyticsStore(analytics_database)
    assert store.revision() is None
    store.migrate()
    assert store.revision() == AnalyticsStore.head()
    inspector = sa.inspect(store.engine)
    assert {"product_events", "ingest_cursors", "events", "alembic_version"} <= set(
        inspector.get_table_names()
    )
    indexes = {tuple(index["column_names"]) for index in inspector.get_indexes("product_events")}
    assert {("kind", "at"), ("conversation_id",), ("required", "at")} <= indexes
    store.migrate()  # at every start: nothing to do the second time
    assert store.revision() == AnalyticsStore.head()
    store.close()


def test_the_migrations_create_exactly_what_the_schema_declares(store: AnalyticsStore) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, METADATA)
    assert differences == []


def test_an_entry_added_twice_is_stored_once_and_the_cursor_moves_with_it(store: AnalyticsStore) -> None:
    row = EventRow(source="audit", source_id="1700000000000-0", at=T0, kind="sent", account_id="A1")
    assert store.add([row, row], cursor=("audit", "1700000000000-0")) == 1
    assert store.add([row], cursor=("audit", "1700000000000-0")) == 0
    assert store.count() == 1 and store.count(kind="sent", account_id="A1") == 1
    assert store.cursor("audit") == "1700000000000-0"
    # The same id from another stream is another entry.
    assert (
        store.add([EventRow(source="agent_queue", source_id="1700000000000-0", at=T0, kind="escalated")]) == 1
    )
    assert store.kinds() == {"sent": 1, "escalated": 1}


def test_times_are_stored_as_utc_and_come_back_aware(store: AnalyticsStore) -> None:
    madrid = timezone(timedelta(hours=1))
    store.add([EventRow(source="audit", source_id="1-0", at=T0.astimezone(madrid), kind="sent")])
    (row,) = store.events()
    assert row.at == T0 and row.at.utcoffset() == timedelta(0)
    with pytest.raises(sa.exc.StatementError):
        store.add([EventRow(source="audit", source_id="2-0", at=datetime(2026, 1, 1), kind="sent")])


def test_texts_longer_than_their_column_are_cut_not_refused(store: AnalyticsStore) -> None:
    long = EventRow(source="audit", source_id="1-0", at=T0, kind="withheld", reason="r" * 1000,
                    detail={"note": "x" * 5000})  # fmt: skip
    assert store.add([long]) == 1
    (row,) = store.events("withheld")
    assert row.reason == "r" * 255 and row.detail == {"note": "x" * 5000}


def test_the_database_is_the_sqlite_file_under_var_unless_database_url_is_set(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    config = make_config()
    assert database_url(config, env={}) == f"sqlite:///{config.base_dir / 'var' / 'analytics.db'}"
    assert database_url(config, env={"DATABASE_URL": "postgresql://u@db/x"}) == "postgresql://u@db/x"
    assert database_url(config, env={"DATABASE_URL": "postgres://u@db/x"}) == "postgresql://u@db/x"
    with pytest.raises(AnalyticsError):
        AnalyticsStore("not a url")


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = AnalyticsStore(f"sqlite:///{tmp_path / 'var' / 'analytics.db'}")
    store.migrate()
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    store.close()
    with sqlite3.connect(tmp_path / "var" / "analytics.db") as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_rasas_sql_event_broker_writes_into_the_migrated_events_table(store: AnalyticsStore) -> None:
    from rasa.core.brokers.sql import SQLEventBroker

    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        broker = SQLEventBroker(dialect="sqlite", db=url.database)
    else:
        broker = SQLEventBroker(dialect="postgresql", host=url.host, port=url.port, db=url.database,
                                username=url.username)  # fmt: skip
    event = {"sender_id": "acct-A1", "event": "user", "text": "hello", "timestamp": T0.timestamp()}
    broker.publish(event)
    broker.engine.dispose()
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT sender_id, data FROM events")).all()
    assert [(sender, json.loads(data)["text"]) for sender, data in rows] == [("acct-A1", "hello")]
    assert store.revision() == AnalyticsStore.head()
