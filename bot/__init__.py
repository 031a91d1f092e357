"""The product: one package per concern, layered (``make lint`` checks it with import-linter).

From the top: ``cli``; ``runtime`` (processes, ``Services``) and ``ops``; ``gateway``; ``outreach``;
``conversations``; ``email`` | ``telegram``; ``compliance`` | ``care``; ``store``; and at the bottom
``config``, ``clock``, ``privacy``, ``errors``. A module imports only from its own layer's package or
below; see docs/architecture.md ("Where code lives").
"""
