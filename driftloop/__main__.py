"""``python -m driftloop`` runs the CLI."""

from driftloop.cli import main

main()
