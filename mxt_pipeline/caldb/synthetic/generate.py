"""Write the synthetic calibration set as a HEASARC-layout CALDB, byte-reproducibly.

``python -m mxt_pipeline.caldb.synthetic --out fixtures_caldb`` writes:

* ``data/svom/mxt/{bcf,cpf}/<code>/mxt_<code>_<YYYYMMDD>_v<NN>.<ext>``: one file per
  code name and version (:data:`MXT_FILES`), with the HEASARC calibration keywords;
* ``data/svom/mxt/upload/thresholds/MXT_THRESHOLDS_<stamp>_v01.yaml``: an upload-class
  file (on-board event thresholds);
* ``data/svom/{ecl,vt}/bcf/teldef/``: the TELDEF of the other storage nodes;
* the index of each instrument (``caldb.indx``, its dated copy under ``index/``) built by
  :func:`mxt_pipeline.caldb.build_index`, and ``software/tools/caldb.config``.

Dates stamped in the files (DATE, CAL_DATE, checksum comments) come from
:data:`BUILD_EPOCH` through ``SOURCE_DATE_EPOCH``, and CREATOR names the generator, not
the package version, so a rerun gives identical bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mxt_pipeline.caldb.products import CaldbMeta, CalibrationModel
from mxt_pipeline.caldb.synthetic import model as M
from mxt_pipeline.errors import MXTInputError

__all__ = ["BUILD_EPOCH", "GENERATOR", "MXT_FILES", "SyntheticFile", "generate", "build_epoch"]

#: SOURCE_DATE_EPOCH of the synthetic set (2025-06-15T00:00:00Z): DATE and CAL_DATE.
BUILD_EPOCH = 1749945600
#: CREATOR of the files.
GENERATOR = "mxt_pipeline.caldb.synthetic 1"

_ENERGY_CBD = "ENERGY(0.2-10)keV"
_THETA_CBD = "THETA(0-90)arcmin"


@dataclass(frozen=True)
class SyntheticFile:
    """One calibration file of the synthetic set."""

    code: str
    vsd: str
    version: int
    make: Callable[[], CalibrationModel]
    description: str
    boundaries: tuple[str, ...] = ()
    ext: str = "fits"
    instrume: str = "MXT"

    @property
    def relpath(self) -> str:
        inst = self.instrume.lower()
        clas = "cpf" if self.code == "MATRIX" else "bcf"
        stamp = self.vsd.replace("-", "")
        return f"data/svom/{inst}/{clas}/{self.code.lower()}/{inst}_{self.code.lower()}_{stamp}_v{self.version:02d}.{self.ext}"


E0, E1, E2 = M.EPOCHS
#: Every file of the set.
MXT_FILES = (
    SyntheticFile("TELDEF", E0, 1, lambda: _teldef(0), "MXT telescope definition, pre-flight alignment"),
    SyntheticFile("TELDEF", E1, 2, lambda: _teldef(1), "MXT telescope definition, in-flight boresight"),
    SyntheticFile("PSF", E0, 1, M.psf_model, "MXT lobster-eye PSF: spot, cross arms, halo vs E, theta",
                  (_ENERGY_CBD, _THETA_CBD)),
    SyntheticFile("EFFAREA", E0, 1, M.effarea_model, "MXT on-axis effective area", (_ENERGY_CBD,), "arf"),
    SyntheticFile("VIGNET", E0, 1, M.vignet_model, "MXT vignetting vs energy and off-axis angle",
                  (_ENERGY_CBD, _THETA_CBD)),
    SyntheticFile("MATRIX", E0, 1, M.matrix_model, "MXT redistribution matrix, 10 eV PI channels", (_ENERGY_CBD,),
                  "rmf"),
    SyntheticFile("CTI", E0, 1, lambda: M.cti_model(0), "MXT CTI per transfer vs energy, launch"),
    SyntheticFile("CTI", E2, 2, lambda: M.cti_model(1), "MXT CTI per transfer vs energy, first year"),
    SyntheticFile("GAINOFF", E0, 1, lambda: M.gainoff_model(0), "MXT gain and offset per column, launch"),
    SyntheticFile("GAINOFF", E2, 2, lambda: M.gainoff_model(1), "MXT gain and offset per column, first year"),
    SyntheticFile("MULTIPLICITY", E0, 1, M.multiplicity_model, "MXT split-loss correction vs multiplicity"),
    SyntheticFile("BADPIX", E0, 1, lambda: M.badpix_model(0), "MXT bad pixels, launch"),
    SyntheticFile("BADPIX", E2, 2, lambda: M.badpix_model(1), "MXT bad pixels, first year"),
    SyntheticFile("PATTERN", E0, 1, M.pattern_model, "MXT pattern thresholds and charge cloud"),
    SyntheticFile("SYSERR", E0, 1, M.syserr_model, "MXT localisation systematic (90%)"),
    SyntheticFile("TELDEF", E0, 1, lambda: M.other_teldef("ECL"), "ECLAIRs detector-plane geometry", instrume="ECL"),
    SyntheticFile("TELDEF", E0, 1, lambda: M.other_teldef("VT"), "VT focal-plane geometry", instrume="VT"),
)  # fmt: skip

#: The upload-class file (on-board event thresholds sent to the satellite).
UPLOAD_NAME = "MXT_THRESHOLDS_20240622T000000_v01.yaml"


def _teldef(version: int):
    from mxt_pipeline.caldb.products import Teldef

    return Teldef(**M.teldef_parameters(version))


def _upload_text() -> str:
    p = M.pattern_model()
    return (
        "# On-board event selection of the MXT camera (synthetic calibration set).\n"
        "instrument: MXT\n"
        "codename: THRESHOLDS\n"
        f"primary_threshold_kev: {p.primary_threshold}\n"
        f"split_threshold_kev: {p.split_threshold}\n"
        f"read_noise_ev: {p.read_noise_ev}\n"
        "frame_time_s: 0.1\n"
    )


def build_epoch(epoch: int = BUILD_EPOCH) -> contextlib.AbstractContextManager[None]:
    """Set ``SOURCE_DATE_EPOCH`` for the duration of the block (restored after)."""
    from mxt_pipeline.io.fits import source_date_epoch

    return source_date_epoch(epoch)


def generate(out: str | os.PathLike[str], *, force: bool = False) -> list[Path]:
    """Write the synthetic calibration set under ``out`` and index it.

    Parameters
    ----------
    out : path-like
        The CALDB root to write (``fixtures_caldb``).
    force : bool
        Replace the ``data/`` and ``software/`` trees of an existing root; without it a
        root holding them is refused.

    Returns
    -------
    list of pathlib.Path
        Every file written (calibration files, uploads, indexes, configuration).
    """
    from mxt_pipeline.caldb import build_index

    root = Path(out)
    owned = [root / "data", root / "software"]
    if any(p.exists() for p in owned):
        if not force:
            raise MXTInputError(f"{root} already holds a CALDB (data/ or software/): use --force to replace it")
        for p in owned:
            if p.exists():
                shutil.rmtree(p)
    written: list[Path] = []
    with build_epoch():
        for f in MXT_FILES:
            meta = CaldbMeta(vsd=f.vsd, description=f.description, boundaries=f.boundaries, instrume=f.instrume,
                             extra={"CREATOR": GENERATOR})  # fmt: skip
            written.append(f.make().to_fits(root / f.relpath, meta))
        up = root / "data/svom/mxt/upload/thresholds" / UPLOAD_NAME
        up.parent.mkdir(parents=True, exist_ok=True)
        up.write_text(_upload_text(), encoding="utf-8")
        written.append(up)
        for inst in ("MXT", "ECL", "VT"):
            idx = build_index(root, "SVOM", inst)
            written += [idx, *sorted((idx.parent / "index").iterdir())]
        written.append(root / "software/tools/caldb.config")
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m mxt_pipeline.caldb.synthetic --out DIR [--force]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m mxt_pipeline.caldb.synthetic", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="fixtures_caldb", help="CALDB root to write (default: fixtures_caldb)")
    ap.add_argument("--force", action="store_true", help="replace an existing data/ and software/ tree")
    args = ap.parse_args(argv)
    try:
        files = generate(args.out, force=args.force)
    except MXTInputError as exc:
        print(f"error: {exc}")
        return 2
    total = sum(p.stat().st_size for p in files if p.is_file())
    print(f"wrote {len(files)} files ({total / 1e6:.2f} MB) under {args.out}")
    return 0


