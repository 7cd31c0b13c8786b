"""``python -m cli``: the same as the ``dcc`` command."""

from cli.app import main

if __name__ == "__main__":  # not when a worker process re-imports it (partitioned runs)
    main()
