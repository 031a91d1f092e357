"""Tools for the people who run and tune the product (issue 17 grows this).

- ``evaluate``: the held-out NLU evaluation and the opt-out calibration (``python -m bot.ops.evaluate``).
- ``validate``: ``debtbot validate``: rasa data validate plus our checks (``python -m bot.ops.validate``).
- ``quality``: ``debtbot test``: stories, held-out NLU and safety as one table compared with the last
  saved result (``var/quality/last.json``); exit 1 on a regression (``python -m bot.ops.quality``).

May import: the bottom modules and ``dialogue``; nothing else of ``bot`` yet.
"""
