"""Conversations the product starts: the outreach planner, openers, plan reminders, the scheduler.

- ``planner``: ``OutreachPlanner`` (a run, paged through the accounts into sharded tasks; what the
  gate deferred, released at its moment) and ``OutreachHandler`` (is the account due, which
  channel, what the gate says).
- ``openers``: the opener through Rasa's trigger_intent and reminders, queued like any reply.
- ``payments``: plans' instalments paid or missed, and the reminder texts.
- ``scheduler``: the worker's tick (one worker per tick, under a lease).

May import: ``bot.conversations`` (openers are queued like replies), ``bot.email``, ``bot.telegram``,
``bot.compliance``, ``bot.store``, the bottom modules. Functions that need many parts take a narrow
``Protocol`` (``OpenerParts``, ``SchedulerParts``), never ``bot.runtime.services.Services``.
"""
