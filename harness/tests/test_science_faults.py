"""Real faults of the science code, on the real bricks, fail the science checks by name.

Each case monkeypatches the science code where a real bug would sit, replays the one
brick concerned on its new golden dataset (``sky_edges`` or ``gti_blocks``) and runs
the science check on what it wrote: the replay diff fails too, but the science check
is what still judges the products once a deliberate change has moved them.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import broken
from harness import science as sci
from harness.config import repo_root
from harness.replay import replay_dataset
from harness.results import Status

GOLDEN = repo_root() / "golden"


def _gehrels_for_exact(mp) -> None:
    """Gehrels' approximate limits where the exact ones are documented (ERRMETH FREQUENTIST)."""
    from mxt_pipeline.lightcurve import poisson_errors as pe

    def approx(n, sigma=1.0):
        n = np.asarray(n, dtype=float)
        return n - pe.gehrels_errors(n)[0], pe.gehrels_upper(n)

    mp.setattr(pe, "frequentist_interval", approx)


CASES = [
    # (dataset, brick, check, failing item, fault)
    ("gti_blocks", "calibrate", "gti", "GTI exposure", broken._saa_gap_dropped),
    ("sky_edges", "lightcurves", "lc_limits", "ERR_HI", _gehrels_for_exact),
]


@pytest.mark.parametrize("dataset,brick,check,item,fault", CASES, ids=[c[2] for c in CASES])
def test_real_fault_fails_the_science_check(dataset, brick, check, item, fault, config, monkeypatch, tmp_path):
    if not (GOLDEN / dataset).is_dir():
        pytest.fail(f"golden dataset {dataset} missing")
    science = dict(config.raw["science"])
    fault(monkeypatch)
    _, outputs = replay_dataset(GOLDEN / dataset, config, tmp_path, bricks=True, pipeline=False, only=(brick,))
    res = sci.science_checks(dataset, GOLDEN / dataset, {brick: outputs[f"{dataset}/{brick}"]}, science, [check])
    bad = [r for r in res if r.status == Status.FAIL]
    assert bad and any(item in r.name for r in bad), [r.line() for r in res]
    # The same check passes on the golden products (the failure is the fault's).
    clean = sci.science_checks(dataset, GOLDEN / dataset, {}, science, [check])
    assert clean and {r.status for r in clean} == {Status.PASS}
