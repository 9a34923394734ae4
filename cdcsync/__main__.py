"""``python -m cdcsync`` runs the ``cdcsync`` CLI (the background sink is started this way)."""

from cdcsync.pipeline.cli import main

main()
