"""Entry points: each ``anyreach-tui`` command, the composition roots, their exits.

``main`` dispatches to one module per command (``dashboard``, ``demo``,
``simulate``, ``export``, ``devices``, ``tail``); ``ending`` is the shared end of
the long-running ones and ``exit_codes`` the one table of exit statuses.
"""
