"""Care for the person writing: the safety screen and what follows a sign of crisis.

- ``screen``: the safety screen, pure (no I/O, imports nothing of ours): recognises, in
  English and Spanish, suicidal thoughts, self-harm and threats to others (crisis), other
  signs of vulnerability, and idioms of distress.
- ``crisis``: what the product does on a crisis sign: the reply with the crisis line of the
  person's country, the escalation at the top priority, and the collection pause.

May import: ``bot.store``, ``bot.config``, ``channels.base`` (``screen``: nothing with I/O, checked by
import-linter).
"""
