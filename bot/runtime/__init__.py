"""The processes and their wiring: the only place that builds ``Services``.

- ``services``: ``build_services`` wires every part from the configuration, once per process.
- ``run`` (``debtbot run``), ``supervisor`` (children, restarts, clean stop) and ``launch`` (what each
  child is), ``model`` (training the Rasa model when its data changed).
- The processes: ``worker`` (Dramatiq + maintenance, scheduler, mailbox), ``action_server`` (rasa-sdk
  with the dialogue backend), ``wsgi`` (the gateway for gunicorn).

May import: everything in ``bot`` but ``bot.cli``. Nothing below imports this package.
"""
