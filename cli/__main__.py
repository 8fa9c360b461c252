"""``python -m cli``: the ``lstm-pipeline`` command."""

from cli.main import main

main()
