"""A conversation's messages in the worker, and what the dialogue does to the world.

- ``inbound``: ``InboundHandler`` (runs ``inbound_steps.STEPS``) and ``NotAnswered`` (a set-aside
  message goes to a person).
- ``inbound_steps``: the inbound path, one function per step, in order (identify, safety screen,
  keywords, silenced addresses, choices, Rasa, render and queue the answer).
- ``outbound``: ``enqueue_outbound`` (in order, once per outbox id) and ``OutboundHandler`` with its
  steps ``OUTBOUND_STEPS`` (ask the provider after an unsure attempt, gate, pace, send, record).
- ``steps``: ``Stop``, ``bind`` and ``run``, what both paths are made of.
- ``identity``: which account a message is from and which conversation it belongs to.
- ``render`` (replies for a channel, numbered and button choices), ``deliveries`` (what happened to
  each message), ``rate_limits`` (pacing per sender, the email reply cap).
- ``dialogue_backend``: what the action server lets the dialogue do (verify, make a plan, flag,
  preferences), and ``creditor_events`` (the signed ``plan.created`` webhook it emits).

May import: ``bot.email``, ``bot.telegram``, ``bot.compliance``, ``bot.care``, ``bot.store``, the bottom
modules, ``channels``, ``dialogue``; never ``bot.outreach``, ``bot.gateway`` or ``bot.runtime``.
"""
