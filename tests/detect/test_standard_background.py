"""The standard background of the acceptance Monte-Carlo comes from the bench itself.

``validation.STANDARD_BACKGROUND`` is the background per pixel and band of the bench's
empty 10 ks field (``measure_empty_field_background``, 12 seeds: 1.59e-6 and 1.67e-6
counts per pixel per second of good time in 0.2-2 and 2-10 keV, 4870 s of good time on
average).  One more field must give the same rate: a change of the bench's CXB or
particle background, of the screening or of the bad pixels shows here.
"""

from __future__ import annotations

import numpy as np

from mxt_pipeline.acceptance.detection import (
    STANDARD_BACKGROUND,
    STANDARD_GOOD_TIME,
    measure_empty_field_background,
)


def test_standard_background_is_the_bench_empty_field():
    out = measure_empty_field_background([3])
    rate = out["rate"][0]
    assert out["good_time"][0] > 1000.0
    # Counts per pixel over the standard good time, each band: the seed's Poisson
    # error is 4.5% (about 500 counts per band), the spread of the rate between the
    # 12 seeds of the derivation 7%: 20% is a change of the bench, not chance.
    per_pixel = rate * STANDARD_GOOD_TIME
    assert np.all(np.abs(per_pixel / STANDARD_BACKGROUND - 1.0) < 0.2), per_pixel
    # The two default bands get about the same background (within 20% of each other).
    assert abs(rate[0] / rate[1] - 1.0) < 0.2
