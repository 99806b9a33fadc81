"""In-memory domain classes: raw hits, events, GTIs and gaps, attitude, auxiliary data.

They are thin classes over numpy arrays and astropy Tables; reading and writing them is
the job of :mod:`mxt_pipeline.datamodel.products` (through :mod:`mxt_pipeline.io`).
"""

from mxt_pipeline.datamodel.attitude import (
    AngleTable,
    Attitude,
    SAAIntervals,
    pointing_rotation,
    rotation_to_pointing,
    week_of,
)
from mxt_pipeline.datamodel.events import EventList, RawHits
from mxt_pipeline.datamodel.gti import GTI, GapList
from mxt_pipeline.datamodel.tables import TableModel

__all__ = [
    "AngleTable",
    "Attitude",
    "SAAIntervals",
    "pointing_rotation",
    "rotation_to_pointing",
    "week_of",
    "EventList",
    "RawHits",
    "GTI",
    "GapList",
    "TableModel",
]
