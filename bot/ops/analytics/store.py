"""The analytics store: an embedded SQLite file by default, PostgreSQL when ``DATABASE_URL`` is set.

``AnalyticsStore(url)`` opens it (nothing is created until :meth:`AnalyticsStore.migrate`, which
runs the Alembic migrations in ``migrations/`` up to the newest). Rows go in with
:meth:`AnalyticsStore.add`, once per ``(source, source_id)`` whatever happens: a second add of the
same entry changes nothing, and the ingest cursor moves in the same transaction as the rows.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa  # type: ignore[import-untyped]  # 1.4, pinned by Rasa: no stubs
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite  # type: ignore[import-untyped]
from sqlalchemy.engine import Connection, Engine  # type: ignore[import-untyped]

from bot.clock import Clock
from bot.config import Config
from bot.errors import Unavailable
from bot.ops.analytics.schema import INGEST_CURSORS, PRODUCT_EVENTS, RASA_EVENTS

__all__ = ["AnalyticsError", "AnalyticsStore", "EventRow", "database_url"]

logger = logging.getLogger(__name__)

#: Where the migrations live (shipped with the package: pyproject's package-data).
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The SQLite file under the configuration's folder when ``DATABASE_URL`` is not set.
DEFAULT_SQLITE_PATH = Path("var") / "analytics.db"
#: How long a SQLite writer waits for another's lock before failing (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Rows per statement when checking which are new.
_CHUNK = 500


class AnalyticsError(Unavailable):
    """The analytics store cannot be used (unreachable, not migrated, a bad URL)."""


def database_url(config: Config, env: Mapping[str, str] | None = None) -> str:
    """``DATABASE_URL`` when set (``postgresql://`` is read as psycopg2's), else the SQLite file
    ``var/analytics.db`` beside the configuration file."""
    env = os.environ if env is None else env
    url = (env.get("DATABASE_URL") or "").strip()
    if url:
        # Heroku-style and libpq URLs name no driver: SQLAlchemy 1.4 wants one it knows.
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        return url
    return f"sqlite:///{config.base_dir / DEFAULT_SQLITE_PATH}"


@dataclass(frozen=True)
class EventRow:
    """One product event, as stored in ``product_events``."""

    source: str
    source_id: str
    at: datetime
    kind: str
    required: bool = False
    conversation_id: str | None = None
    account_id: str | None = None
    channel: str | None = None
    language: str | None = None
    creditor: str | None = None
    opener_variant: str | None = None
    rule: str | None = None
    reason: str | None = None
    outcome: str | None = None
    agent: str | None = None
    message_kind: str | None = None
    outbox_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """The row's column values, texts cut to their columns' lengths (PostgreSQL refuses longer)."""
        values: dict[str, Any] = {}
        for column in PRODUCT_EVENTS.columns:
            if column.name == "id":
                continue
            value = getattr(self, column.name)
            if column.name == "detail":
                value = json.dumps(dict(value), sort_keys=True, default=str) if value else None
            elif isinstance(value, str):
                length = getattr(column.type, "length", None)
                value = (value[:length] if length else value) or None
            values[column.name] = value
        values["kind"] = self.kind or "other"
        return values


def _on_connect_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers (the console's pages) never block the ingester, nor it them.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


class AnalyticsStore:
    """The SQL side of the analytics: migrations, idempotent writes, the queries tests and pages use."""

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = url
        self.clock = clock or Clock()
        self.engine = self._engine(url)

    @staticmethod
    def _engine(url: str) -> Engine:
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise AnalyticsError(f"DATABASE_URL is not a database URL: {exc}") from None
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                parsed, future=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            )
            sa.event.listen(engine, "connect", _on_connect_sqlite)
            return engine
        return sa.create_engine(parsed, future=True, pool_pre_ping=True)

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> AnalyticsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- schema --------------------------------------------------------------------------------

    def _alembic(self, connection: Connection) -> AlembicConfig:
        alembic = AlembicConfig()
        alembic.set_main_option("script_location", str(MIGRATIONS))
        alembic.attributes["connection"] = connection
        return alembic

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` (the newest by default); safe to run at every start."""
        with self.engine.begin() as connection:
            command.upgrade(self._alembic(connection), revision)

    def revision(self) -> str | None:
        """The schema's current revision (``None``: never migrated)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head() -> str:
        """The newest migration's revision."""
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        if head is None:
            raise AnalyticsError("the analytics migrations are missing")
        return head

    # --- writing -------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: everything in it is committed together, or nothing is."""
        with self.engine.begin() as connection:
            yield connection

    def add(self, rows: Iterable[EventRow], *, cursor: tuple[str, str] | None = None) -> int:
        """Store ``rows`` (an entry already stored is left as it is) and, in the same transaction,
        move ``cursor`` (stream, last id); return how many rows were new."""
        with self.transaction() as connection:
            added = self.add_in(connection, rows)
            if cursor is not None:
                self._set_cursor(connection, *cursor)
        return added

    def add_in(self, connection: Connection, rows: Iterable[EventRow]) -> int:
        """:meth:`add` inside the caller's transaction."""
        # One row per entry, the first one given (an entry may be handed in twice in one batch).
        unique: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            unique.setdefault((row.source, row.source_id), row.values())
        values = list(unique.values())
        added = 0
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            added += len(chunk) - self._existing(connection, chunk)
            connection.execute(self._insert_ignoring_duplicates(), chunk)
        return added

    def _existing(self, connection: Connection, chunk: Sequence[Mapping[str, Any]]) -> int:
        by_source: dict[str, set[str]] = {}
        for value in chunk:
            by_source.setdefault(value["source"], set()).add(value["source_id"])
        table = PRODUCT_EVENTS
        found = 0
        for source, ids in by_source.items():
            query = sa.select(sa.func.count()).where(table.c.source == source, table.c.source_id.in_(ids))
            found += int(connection.execute(query).scalar_one())
        return found

    def _insert_ignoring_duplicates(self) -> Any:
        index = ["source", "source_id"]
        if self.dialect == "postgresql":
            return postgresql.insert(PRODUCT_EVENTS).on_conflict_do_nothing(index_elements=index)
        if self.dialect == "sqlite":
            return sqlite.insert(PRODUCT_EVENTS).on_conflict_do_nothing(index_elements=index)
        raise AnalyticsError(f"the analytics store runs on SQLite or PostgreSQL, not {self.dialect}")

    def _set_cursor(self, connection: Connection, stream: str, last_id: str) -> None:
        values = {"stream": stream, "last_id": last_id, "updated_at": self.clock.now()}
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        insert = dialect.insert(INGEST_CURSORS).values(**values)
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=["stream"],
                set_={"last_id": insert.excluded.last_id, "updated_at": insert.excluded.updated_at},
            )
        )

    def add_rasa_events(self, events: Sequence[tuple[str, str]], *, cursor: tuple[str, str]) -> int:
        """Rasa's events as (sender id, the event's JSON), in order, into Rasa's ``events`` table,
        and ``cursor`` moved in the same transaction; return how many were stored."""
        with self.transaction() as connection:
            for start in range(0, len(events), _CHUNK):
                chunk = events[start : start + _CHUNK]
                connection.execute(RASA_EVENTS.insert(), [{"sender_id": s, "data": d} for s, d in chunk])
            self._set_cursor(connection, *cursor)
        return len(events)

    # --- reading -------------------------------------------------------------------------------

    def cursor(self, stream: str) -> str | None:
        """The last entry id stored from ``stream`` (``None``: nothing yet)."""
        with self.engine.connect() as connection:
            query = sa.select(INGEST_CURSORS.c.last_id).where(INGEST_CURSORS.c.stream == stream)
            value = connection.execute(query).scalar_one_or_none()
        return None if value is None else str(value)

    def count(self, kind: str | None = None, **equal: Any) -> int:
        """How many product events there are (of ``kind``; with columns equal to ``equal``)."""
        table = PRODUCT_EVENTS
        query = sa.select(sa.func.count()).select_from(table)
        if kind is not None:
            query = query.where(table.c.kind == kind)
        for name, value in equal.items():
            query = query.where(table.c[name] == value)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def events(self, kind: str | None = None, *, conversation_id: str | None = None) -> list[EventRow]:
        """Product events (of ``kind``, of one conversation), oldest first."""
        table = PRODUCT_EVENTS
        query = sa.select(table).order_by(table.c.at, table.c.id)
        if kind is not None:
            query = query.where(table.c.kind == kind)
        if conversation_id is not None:
            query = query.where(table.c.conversation_id == conversation_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_row(row) for row in rows]

    def kinds(self) -> dict[str, int]:
        """How many events of each kind."""
        table = PRODUCT_EVENTS
        query = sa.select(table.c.kind, sa.func.count()).group_by(table.c.kind)
        with self.engine.connect() as connection:
            return {str(kind): int(n) for kind, n in connection.execute(query).all()}


def _row(row: Mapping[str, Any]) -> EventRow:
    values = {name: row[name] for name in row if name not in ("id", "detail")}
    detail = json.loads(row["detail"]) if row["detail"] else {}
    return EventRow(**values, detail=detail)
