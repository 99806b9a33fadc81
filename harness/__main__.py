"""``python -m harness``: the regression harness command line (see harness/cli.py)."""

import sys

from harness.cli import main

# The guard matters: the ensemble step starts worker processes (dask.distributed), which
# import the main module again under another name; they must not start a second run.
if __name__ == "__main__":
    sys.exit(main())
