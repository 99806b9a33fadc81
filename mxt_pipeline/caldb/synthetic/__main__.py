"""``python -m mxt_pipeline.caldb.synthetic --out fixtures_caldb``."""

import sys

from mxt_pipeline.caldb.synthetic.generate import main

sys.exit(main())
