"""Regression harness of the MXT pipeline.

Golden L1 datasets replayed through every brick and every pipeline, a FITS-aware diff
with per-product/per-column tolerances, schema / fitsverify / localization / ensemble
checks, coverage and timing trends, and the HTML + markdown report.  Entry point:
``python -m harness run`` (see ``docs/harness.md``).

Modules
-------
config        the one configuration file (``harness/config.yaml``): tolerances, thresholds
fitsdiff      FITS comparison matched by (EXTNAME, EXTVER), tolerant, with statistics
jsondiff      the same for JSON products (fast products, reports)
compare       one entry point choosing the comparison by file type
golden        golden datasets: manifest with SHA-256, candidates, bless, verify
replay        each brick alone on its golden input, each pipeline end to end
checks        schemas, fitsverify, localization, campaign ensemble thresholds
coverage_trend, timing, report, run
"""

__all__ = ["__version__"]

__version__ = "1.0"
