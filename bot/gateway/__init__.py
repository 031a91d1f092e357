"""The gateway (Flask): ``create_app``, its blueprints and their templates.

- ``app``: ``create_app(config, parts)`` and the one table of errors to HTTP statuses.
- ``webhooks`` (authenticate, parse, de-duplicate, append; no Rasa), ``health`` (``/healthz``),
  ``simulator`` (development only), ``unsubscribe`` (the one-click pages); ``templates/``.

The blueprints receive what they use (``GatewayParts``, a Protocol the process's ``Services``
satisfies); the WSGI entry that builds those parts is ``bot.runtime.wsgi``.
May import: every ``bot`` package below it; never ``bot.runtime``.
"""
