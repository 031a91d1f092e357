"""The analytics store (issue 17): product events and Rasa's conversation events in SQL.

- ``schema``: the tables (SQLAlchemy Core); ``migrations/``: Alembic, run from code.
- ``store``: :class:`AnalyticsStore` (SQLite under ``var/`` by default, PostgreSQL with
  ``DATABASE_URL``), :func:`database_url`.
- ``ingest``: :class:`Ingester` copies the product's Redis streams (the audit, hand-off changes,
  creditor events, escalations) into SQL, exactly once per entry.
- ``retention``: :func:`run_retention` deletes transcripts and tracker data after
  ``retention.transcript_days`` and the records the law requires after ``retention.records_years``.
"""
