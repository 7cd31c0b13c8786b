"""``python -m cli``: the same as the ``dcc`` command."""

from cli.app import main

main()
