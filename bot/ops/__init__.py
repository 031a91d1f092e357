"""Tools for the people who run and tune the product (issue 17 grows this).

- ``evaluate``: the held-out NLU evaluation and the opt-out calibration (``python -m bot.ops.evaluate``).

May import: the bottom modules and ``dialogue``; nothing else of ``bot`` yet.
"""
