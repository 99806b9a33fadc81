"""Codecs of the X-band pipeline data: how each brick output goes to and from files.

Every FITS product goes through the I/O layer (:mod:`mxt_pipeline.io.products` and
the writers of the science packages), so products are validated on read and written
atomically with checksums.  Science modules are imported inside the functions: a
pipeline is described (``mxt run --describe``) without importing numba kernels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mxt_pipeline.detect.bands import EnergyBand
from mxt_pipeline.detect.srclist import region_text
from mxt_pipeline.errors import MXTPipelineError
from mxt_pipeline.io import read_product
from mxt_pipeline.io.fits import atomic_write_bytes
from mxt_pipeline.io.products import (
    read_angles,
    read_attitude,
    read_events,
    read_raw_hits,
    write_events,
)
from mxt_pipeline.io.srclist_product import write_srclist
from mxt_pipeline.pipelines.ports import Codec

__all__ = [
    "SourceList",
    "OBSERVATION",
    "L1_PASSES",
    "ATTITUDE",
    "ANGLES",
    "L2_EVENTS",
    "LIGHT_CURVES",
    "SRCLIST",
    "REGIONS",
    "png_codec",
]


# ---- inputs ---------------------------------------------------------------------------------


def _read_observation(path: Path):
    # lazy: runtime loads jsonschema (~40 modules), which mxt detect (and its --help) does not load otherwise
    from mxt_pipeline.pipelines.runtime import ObservationInputs

    p = Path(path)
    return ObservationInputs.from_dataset(p.parent if p.name == "dataset.json" else p)


def _read_raw(path: Path):
    return read_raw_hits(path)


def _read_att(path: Path):
    return read_attitude(path)


def _read_ang(path: Path):
    return read_angles(path)


#: A dataset folder (``dataset.json``) resolved to :class:`ObservationInputs`.
OBSERVATION = Codec("dataset", read=_read_observation)
#: The L1 raw files, one per ground-station pass (read only: inputs of a run).
L1_PASSES = Codec("MXT_L1_RAW", read=_read_raw, many=True, fits=True)
ATTITUDE = Codec("MXT_ATT", read=_read_att, fits=True)
ANGLES = Codec("MXT_ANG", read=_read_ang, fits=True)


# ---- L2 events -------------------------------------------------------------------------------


def _write_events(path: Path, events, naming) -> None:
    write_events(path, events)


def _read_events(path: Path):
    return read_events(path)


L2_EVENTS = Codec("MXT_L2_EVT", "mxt_l2_evt_{obs_id}.fits", _write_events, _read_events, fits=True)


# ---- source list ----------------------------------------------------------------------------


@dataclass
class SourceList:
    """A source table with what its product needs beside the rows.

    Attributes
    ----------
    table : astropy Table
        SRCLIST columns (plus any extra columns the detection adds), sorted by DET_ML.
    bands : list of EnergyBand
    obs_id : str
    syserr_arcsec, ml_threshold : float
    tstart, tstop : float, optional
    object : str, optional
    """

    table: Any
    bands: list
    obs_id: str
    syserr_arcsec: float
    ml_threshold: float
    tstart: float | None = None
    tstop: float | None = None
    object: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)


def _write_srclist(path: Path, src: SourceList, naming) -> None:
    write_srclist(path, src.table, src.bands, obs_id=src.obs_id, syserr_arcsec=src.syserr_arcsec,
                  ml_threshold=src.ml_threshold, tstart=src.tstart, tstop=src.tstop, object_name=src.object)  # fmt: skip


def _read_srclist(path: Path) -> SourceList:
    prod = read_product(path, "MXT_SOP_SKY")
    hdr = prod.header("SRCLIST")
    bands_t = prod.table("BANDS")
    bands = [EnergyBand(float(lo), float(hi)) for lo, hi in zip(bands_t["E_MIN"], bands_t["E_MAX"])]
    prim = prod.primary_header
    return SourceList(
        table=prod.table("SRCLIST"),
        bands=bands,
        obs_id=str(prim.get("OBS_ID", "")),
        syserr_arcsec=float(hdr.get("SYSERR", 0.0)),
        ml_threshold=float(hdr.get("MLTHRESH", 0.0)),
        tstart=prim.get("TSTART"),
        tstop=prim.get("TSTOP"),
        object=prim.get("OBJECT"),
    )


SRCLIST = Codec("MXT_SOP_SKY", "mxt_sop_sky_{obs_id}.fits", _write_srclist, _read_srclist, fits=True)


def _write_regions(path: Path, src: SourceList, naming) -> None:
    atomic_write_bytes(path, region_text(src.table).encode("ascii"))


def _read_text(path: Path) -> str:
    return Path(path).read_text(encoding="utf-8")


#: DS9 region file of a source list (written from the SourceList value).
REGIONS = Codec("ds9-region", "mxt_sop_sky_{obs_id}.reg", _write_regions, _read_text, role="aux")


# ---- light curves ---------------------------------------------------------------------------


def _write_lc(path: Path, lc, naming) -> None:
    # lazy: the light-curve product loads scipy (~150 modules); only the lightcurves brick needs it
    from mxt_pipeline.io.lightcurve_product import write_light_curve

    write_light_curve(path, lc)


def _read_lc(path: Path):
    # lazy: the light-curve product loads scipy (~150 modules); only the lightcurves brick needs it
    from mxt_pipeline.io.lightcurve_product import read_light_curve

    return read_light_curve(path)


#: One ``MXT_LC`` product per source, keyed ``src<SRC_ID>``.
LIGHT_CURVES = Codec("MXT_LC", "mxt_lc_{obs_id}_{key}.fits", _write_lc, _read_lc, many=True, fits=True)


# ---- previews -------------------------------------------------------------------------------


def _write_png(path: Path, data: bytes, naming) -> None:
    if not isinstance(data, (bytes, bytearray)) or not bytes(data[:8]) == b"\x89PNG\r\n\x1a\n":
        raise MXTPipelineError("a preview must be PNG bytes", file=path)
    atomic_write_bytes(path, bytes(data))


def _read_png(path: Path) -> bytes:
    return Path(path).read_bytes()


def png_codec(pattern: str, many: bool = False) -> Codec:
    """PNG previews (the core renders them to bytes)."""
    return Codec("png", pattern, _write_png, _read_png, many=many, role="preview")
