"""The agents' console: the people who take over conversations from the bot.

- ``agents``: agent accounts (``agent`` or ``supervisor``), their passwords (argon2), one-time
  set-password links and sign-in checks (``AgentDirectory``); ``debtbot agents`` manages them.
- ``handoff``: the handoff state machine (who owns a conversation: the bot or a person).
- ``desk``: what agents do to a conversation (claim, reply through the compliance gate, notes,
  flags, preferences, opt-out, hand back, close), each audited. ``Desk`` is assembled there from
  its parts: ``desk_base`` (shared state and helpers, claims, the conversation's facts, Rasa's
  tracker events), ``desk_replies`` (replies through the gate, deferred replies), ``desk_plans``
  (payment plans), ``desk_person`` (verification, notes, flags, preferences, opt-out,
  callbacks), ``desk_mail`` (mail set aside) and ``desk_reading`` (the page's view, history,
  audit). ``plans``: what plans set up from the console share with the page; ``inbox``: what
  waits for a person, in priority order; ``canned``: canned replies per language.
- ``auth``: sign-in (Flask-Login sessions, argon2, throttling on Redis); ``web``: the blueprint
  mounted at ``/console`` (pages in ``templates/console``, plain JS and CSS in ``static``).

May import: ``bot.store``, ``bot.compliance``, ``bot.conversations``, ``bot.outreach``, ``bot.email``,
``bot.telegram``, ``bot.config``, ``bot.errors``, ``bot.clock``, ``bot.privacy``, ``channels``,
``dialogue.rasa_client`` / ``dialogue.parsing``; never ``bot.runtime`` or ``bot.gateway`` (they
stand on this: the gateway mounts the console's pages, the runtime builds its parts).
"""
