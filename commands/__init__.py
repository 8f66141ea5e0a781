"""The command line's parts: what :mod:`sleuth.cli` (the one Typer app) registers and uses.

- :mod:`.common`: the options every command shares (``--library``, ``--home``, ``--json``), opening
  a library or exiting with one line, JSON output, one line for an unexpected error;
- :mod:`.conventions`: ``--version``, ``sleuth.toml`` defaults, option values checked at parse time;
- :mod:`.terminal`: output that never interprets what it prints; :mod:`.progress`: the index line;
- the command groups: :mod:`.manage` (ls, rm, outline), :mod:`.models`, :mod:`.eval`, :mod:`.demo`,
  :mod:`.serve` (``sleuth mcp``; the servers themselves live in :mod:`sleuth.serve`).

Nothing here imports :mod:`sleuth.cli`: the app imports its commands, never the other way.
"""
