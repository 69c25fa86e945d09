"""``python -m processor`` runs the ``activity`` command line."""

import sys

from processor.cli import main

sys.exit(main())
