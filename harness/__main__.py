"""``python -m harness``: the regression harness command line (see harness/cli.py)."""

import sys

from harness.cli import main

sys.exit(main())
