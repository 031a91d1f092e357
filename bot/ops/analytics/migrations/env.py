"""Alembic's environment for the analytics store: run from code only
(:meth:`bot.ops.analytics.store.AnalyticsStore.migrate`), on the connection it passes in
``config.attributes["connection"]``; no alembic.ini."""

from __future__ import annotations

from alembic import context

from bot.ops.analytics.schema import METADATA

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the analytics migrations run from AnalyticsStore.migrate(), with a connection")

context.configure(
    connection=connection,
    target_metadata=METADATA,
    # SQLite changes most of a table by copying it: later migrations may need it.
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
