"""Subcommands of the ``activity`` command line that have more than a few lines of glue."""
