"""Instrument and mission constants of SVOM/MXT, with their public sources.

Values that the synthetic calibration database re-states (PSF, effective area, ...)
live in the CALDB, not here: this module holds only fixed facts of the instrument and
of the data conventions.
"""

from __future__ import annotations

import math

from mxt_pipeline._version import __version__

#: Mission and instrument names written in every product header.
TELESCOP = "SVOM"
INSTRUME = "MXT"
#: Instruments of the SVOM storage nodes of the CALDB (same calibration formats).
SVOM_INSTRUMENTS = ("MXT", "ECL", "VT")

#: Time convention of the FSC products (product card DT_MXT): TT seconds since
#: MJD 57754.0 (2017-01-01T00:00:00 TT).
MJDREFI = 57754
MJDREFF = 0.0
TIMESYS = "TT"
TIMEUNIT = "s"
TIMEREF = "LOCAL"

#: pnCCD camera (Plasse+2025, arXiv:2506.02271): 256 x 256 pixels of 75 micron.
N_PIX = 256
PIXEL_SIZE_MM = 0.075
#: Flight focal length (Feldman+2026, arXiv:2605.10263).
FOCAL_LENGTH_MM = 1140.0
#: Angular size of one pixel at the focal length, in arcsec (about 13.57").
PIXEL_SCALE_ARCSEC = math.degrees(math.atan(PIXEL_SIZE_MM / FOCAL_LENGTH_MM)) * 3600.0
#: Frame integration time, about 100 ms (Robinet+2026, arXiv:2603.05342).
FRAME_TIME_S = 0.1

#: Nominal energy band, keV (Goetz+2022, arXiv:2211.13489).
ENERGY_MIN_KEV = 0.2
ENERGY_MAX_KEV = 10.0

#: PI channels: 10 eV wide, channel k covers [10 k, 10 (k + 1)) eV.
PI_CHANNEL_EV = 10.0
N_PI_CHANNELS = 1024

#: Raw ADC range of a pixel value (14-bit converter).
PHA_MAX = 16383

#: Readout geometry: each CCD column (RAWY) has its own amplifier, so gain and offset
#: depend on RAWY; charge is transferred along the column, row by row, towards the
#: readout node at RAWZ = -1, so a hit at row RAWZ undergoes RAWZ + 1 transfers and
#: CTI losses depend on RAWZ.
COLUMN_AXIS = "RAWY"
ROW_AXIS = "RAWZ"

#: SVOM alert quality factors from the 90% error radius (FSC notice documentation):
#: qf4 < 30", qf3 30-60", qf2 60-120", qf1 120-300"; above 300" no quality (0).
QF_R90_EDGES_ARCSEC = (30.0, 60.0, 120.0, 300.0)

#: Origins a gap in the good time may have; every gap carries exactly one.
GAP_ORIGINS = ("TELEMETRY", "SAA", "EARTH", "SLEW", "ATTITUDE", "BADFRAME", "OTHER")

#: Creator string stamped in every product.
def creator() -> str:
    """Return the CREATOR keyword value, e.g. ``mxt_pipeline 0.1.0``."""
    return f"mxt_pipeline {__version__}"
