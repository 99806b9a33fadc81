"""Raw pixel hits (L1) and reconstructed, calibrated events (L2)."""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.table import Table

from mxt_pipeline.datamodel.gti import GTI, GapList
from mxt_pipeline.datamodel.tables import TableModel

__all__ = ["RawHits", "EventList"]


class RawHits(TableModel):
    """Pixel hits of one or several ground-station passes (L1 raw EVENTS).

    Columns TIME, FRAME, RAWY, RAWZ, PHA. ``gti`` is the time the data cover;
    ``meta`` holds OBS_ID, PASS_ID, STATION, FRAMETIM.
    """

    CONTENT = "MXT_L1_RAW"
    EXTNAME = "EVENTS"

    def __init__(self, table: Table | None = None, *, gti: GTI | None = None, meta: dict[str, Any] | None = None):
        super().__init__(table, meta=meta)
        self.gti = gti if gti is not None else GTI.empty()

    @property
    def n_frames(self) -> int:
        """Number of distinct frames that hold at least one hit."""
        return int(np.unique(self["FRAME"]).size)


class EventList(TableModel):
    """Reconstructed, calibrated events (L2 EVENTS) with their GTI and gaps."""

    CONTENT = "MXT_L2_EVT"
    EXTNAME = "EVENTS"

    def __init__(
        self,
        table: Table | None = None,
        *,
        gti: GTI | None = None,
        gaps: GapList | None = None,
        meta: dict[str, Any] | None = None,
    ):
        super().__init__(table, meta=meta)
        self.gti = gti if gti is not None else GTI.empty()
        self.gaps = gaps if gaps is not None else GapList.empty()

    @property
    def exposure(self) -> float:
        """Good time of the list (s)."""
        return self.gti.exposure
