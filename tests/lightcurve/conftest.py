"""Fixtures of the light-curve tests: a synthetic observation with gaps of known origin."""

from __future__ import annotations

import numpy as np
import pytest

from .simulated import gti_from_gaps, make_event_list, orbit_gaps, source_list


@pytest.fixture(scope="module")
def observation():
    """A 20 ks observation (27.5 % in gaps): a decaying GRB at the centre, a constant source."""
    rng = np.random.default_rng(3)
    gaps = orbit_gaps(20000.0)
    gti = gti_from_gaps(0.0, 20000.0, gaps)
    events = make_event_list(
        gti, gaps, rng,
        sources=[(128.0, 128.0, lambda t: 5.0 * ((t + 100.0) / 100.0) ** -1.0, 5.0),
                 (60.0, 200.0, lambda t: np.full_like(t, 0.3), 0.3)],
        bkg_rate=0.05,
    )  # fmt: skip
    return events, source_list([(128.0, 128.0), (60.0, 200.0)])
