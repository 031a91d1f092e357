"""Tools for the people who run and tune the product (issue 17 grows this).

- ``evaluate``: the held-out NLU evaluation and the opt-out calibration (``python -m bot.ops.evaluate``).
- ``validate``: ``debtbot validate``: rasa data validate plus our checks (``python -m bot.ops.validate``).
- ``quality``: ``debtbot test``: stories, held-out NLU and safety as one table compared with the last
  saved result (``var/quality/last.json``); exit 1 on a regression (``python -m bot.ops.quality``).
- ``reload``: ``debtbot reload``: a new model into the running Rasa server(s), a canary, rollback.
- ``stories``: ``debtbot export-story``: a real conversation as an anonymised Rasa test story.
- ``analytics``: the analytics store (SQL), the ingester of the product's events, the conversations
  read model (``conversations``, ``facts``), retention.
- ``web`` (+ ``web_common``): the ops pages under ``/console/ops`` (the ``ops`` role and supervisors):
  ``review``/``review_web`` (conversation review, Save as test story), ``nlu_inbox``/``nlu_web`` (the
  NLU inbox and labelling), ``funnel``/``charts``/``funnel_web`` (funnel, opener A/B/n, losses).
- ``progress``: progress bars for the long commands.

May import every layer below it (``bot.gateway`` and down) and ``dialogue``; never
``bot.runtime`` (which runs the timed work here) or ``bot.cli``.
"""
