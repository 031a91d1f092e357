"""Telegram on the bot's side (the adapter itself is ``channels.telegram``).

- ``links``: one-time deep links that tie a Telegram chat to an account.
- ``poller``: long polling for development without a public URL (same path as the webhook after).

May import: ``bot.store``, the bottom modules, ``channels``; not ``bot.email``.
"""
