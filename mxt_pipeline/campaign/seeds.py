"""Seeds of campaign runs.

A run's seed depends only on the campaign seed and the run index, never on the
worker, the order of execution or the number of workers: ``numpy.random.SeedSequence``
with the run index as spawn key gives independent, reproducible streams.
"""

from __future__ import annotations

import numpy as np

__all__ = ["run_seed_sequence", "run_seed"]


def run_seed_sequence(campaign_seed: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of run ``index`` of the campaign seeded with ``campaign_seed``."""
    if index < 0:
        raise ValueError("run index must be non-negative")
    return np.random.SeedSequence(entropy=int(campaign_seed), spawn_key=(int(index),))


def run_seed(campaign_seed: int, index: int) -> int:
    """A 32-bit integer seed for run ``index`` (what ``mxt simulate --seed`` takes)."""
    return int(run_seed_sequence(campaign_seed, index).generate_state(1, dtype=np.uint32)[0])
