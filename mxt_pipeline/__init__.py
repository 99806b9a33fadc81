"""SVOM/MXT ground pipeline.

Subpackages, one per domain:

``io``          FITS I/O layer, product formats, schemas and validation
``datamodel``   in-memory domain classes (raw hits, events, GTIs and gaps, attitude)
``caldb``       calibration database: index, selection, CaDBIO client, service
``simulate``    simulation bench: photons to raw L1 event lists
``calib``       calibration chain: L1 raw hits to L2 calibrated events
``detect``      two-stage source detection and the MXT-SOP-SKY source list
``lightcurve``  light curves, binning (S/N, Bayesian blocks), previews
``pipelines``   bricks, XBAND-GP / XBAND-CP pipelines, scheduler contract
"""

from mxt_pipeline._version import __version__
from mxt_pipeline.errors import MXTError

__all__ = ["__version__", "MXTError"]
