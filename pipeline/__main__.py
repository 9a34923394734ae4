"""``python -m pipeline`` runs the ``cdcsync`` CLI (used to start the background sink)."""

from pipeline.cli import main

main()
