"""Light curves: extraction per source, gap-aware rates, binning, errors, previews.

Public entry points (see docs/lightcurves.md):

* :func:`~mxt_pipeline.lightcurve.bayesian_blocks.bayesian_blocks`: exact Bayesian
  blocks, called like astropy's, identical edges, much faster for events, with GTIs;
* :mod:`~mxt_pipeline.lightcurve.poisson_errors`: Gehrels (1986), exact frequentist
  and Kraft-Burrows-Nousek (1991) intervals;
* :mod:`~mxt_pipeline.lightcurve.binning` and :mod:`~mxt_pipeline.lightcurve.rates`:
  fixed, constant-S/N and Bayesian-block bins; exposure (FRACEXP) from GTIs and dead time;
* :func:`~mxt_pipeline.lightcurve.extract.extract_light_curves`: source and background
  regions from L2 events and a source list;
* :func:`~mxt_pipeline.lightcurve.preview.plot_light_curve`: the preview figure
  (:func:`~mxt_pipeline.lightcurve.preview.figure_png` gives its PNG bytes).

The ``MXT_LC`` product is written and read by :mod:`mxt_pipeline.io.lightcurve_product`: this
package never opens a file.

Submodules are imported on demand, so importing this package stays cheap.
"""

from __future__ import annotations

import importlib

# The function shadows its submodule of the same name: imported eagerly (the module is
# light; its compiled kernels load on first use).
from mxt_pipeline.lightcurve.bayesian_blocks import bayesian_blocks, ncp_prior_from_p0

_EXPORTS = {
    "poisson_interval": "poisson_errors",
    "gehrels_errors": "poisson_errors",
    "kraft_burrows_nousek": "poisson_errors",
    "frequentist_interval": "poisson_errors",
    "fixed_bins": "binning",
    "snr_bins": "binning",
    "block_bins": "binning",
    "bin_exposure": "rates",
    "light_curve": "rates",
    "LightCurve": "rates",
    "extract_light_curves": "extract",
    "SourceRegion": "extract",
    "source_region": "extract",
    "plot_light_curve": "preview",
}

__all__ = ["bayesian_blocks", "ncp_prior_from_p0", *sorted(_EXPORTS)]


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'mxt_pipeline.lightcurve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mxt_pipeline.lightcurve.{mod}"), name)
