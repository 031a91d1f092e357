"""Tools for the people who run and tune the product (issue 17 grows this).

- ``evaluate``: the held-out NLU evaluation and the opt-out calibration (``python -m bot.ops.evaluate``).
- ``validate``: ``debtbot validate``: rasa data validate plus our checks (``python -m bot.ops.validate``).
- ``quality``: ``debtbot test``: stories, held-out NLU and safety as one table compared with the last
  saved result (``var/quality/last.json``); exit 1 on a regression (``python -m bot.ops.quality``).
- ``reload``: ``debtbot reload``: a new model into the running Rasa server(s), a canary, rollback.
- ``stories``: ``debtbot export-story``: a real conversation as an anonymised Rasa test story.
- ``analytics``: the analytics store (SQL), the ingester of the product's events, retention.

May import every layer below it (``bot.gateway`` and down) and ``dialogue``; never
``bot.runtime`` (which runs the timed work here) or ``bot.cli``.
"""
