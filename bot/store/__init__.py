"""Storage: the Redis connection, every key name, and the records the whole product shares.

- ``connection``: ``connect``, the embedded Redis's address and password, ``Keys`` (every key name).
- ``accounts``, ``addresses`` (per-address state: opted out, wrong party, unreachable, care window),
  ``agent_queue`` (conversations flagged for a person), ``opener_stats`` (outcomes per opener wording).
- ``queues`` (one ordered stream per sender, leases, retries, dead letters) and ``jobs`` (Dramatiq
  drain jobs and their plans).
- ``intake``: an accepted inbound message, stored once and its handling planned; the names of the
  inbound and outbound queues.
- ``history_entries``: the shape of a conversation's history lines, so the agents' queue and the
  crisis desk write their line in the same script as the fact they record.

May import: ``bot.config``, ``bot.errors``, ``bot.clock``, ``bot.privacy``, ``channels.base``; never
another ``bot`` package (everything else stands on this).
"""
