"""What may be sent, when and how: the rules, the gate that applies them, the words that stop us.

- ``rules``: the compliance rules as pure functions (contact hours, time zones, frequency caps,
  pauses, opt-out line, collector statement, card numbers): no I/O, table-tested.
- ``gate``: ``ComplianceGate`` reads the facts the rules need from Redis in one round trip and
  audits every decision.
- ``keywords``: STOP / START / HELP (SMS, and STOP by email), applied the moment a message arrives.
- ``notices``: the fixed texts the product says itself (confirmations, the opt-out line, ...).

May import: ``bot.store``, ``bot.config``, ``bot.clock``, ``bot.errors``, ``bot.privacy``,
``channels.base``. ``rules`` imports nothing that does I/O (checked by import-linter).
"""
