"""CLI sub-commands, one module per command (imported lazily by :mod:`harness.cli`)."""
