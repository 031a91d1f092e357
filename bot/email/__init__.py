"""Email on the bot's side (the adapter itself is ``channels.email``).

- ``intake``: raw mail in (webhook or poller): parsed and queued once, or set aside.
- ``poller`` (IMAP with IDLE) and ``mailbox`` (one worker at a time reads it, under a lease).
- ``threads`` (which account one of our Message-IDs belongs to), ``envelope`` (subject, thread and
  opt-out headers on what we send), ``unsubscribe`` (the one-click links), ``dead_letters``.

May import: ``bot.compliance``, ``bot.store``, the bottom modules, ``channels``; not ``bot.telegram``.
"""
