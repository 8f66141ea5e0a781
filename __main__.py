"""``python -m sleuth``: the same as the ``sleuth`` command."""

from .cli import main

main()
