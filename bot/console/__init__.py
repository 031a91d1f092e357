"""The agents' console: the people who take over conversations from the bot.

- ``agents``: agent accounts (``agent`` or ``supervisor``), their passwords (argon2), one-time
  set-password links and sign-in checks (``AgentDirectory``); ``debtbot agents`` manages them.
- ``handoff``: the handoff state machine (who owns a conversation: the bot or a person).
- Later: the console's sign-in, blueprint, views and templates.

May import: ``bot.store``, ``bot.compliance``, ``bot.conversations``, ``bot.config``,
``bot.errors``, ``bot.clock``, ``bot.privacy``; never ``bot.runtime`` or ``bot.gateway`` (they
stand on this: the gateway will mount the console's pages, the runtime builds its parts).
"""
