"""The calibration set of an observation: one model per CALDB code name."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from mxt_pipeline.caldb.products._base import CalibrationModel
from mxt_pipeline.caldb.products.badpix import BadPixels
from mxt_pipeline.caldb.products.cti import CTIModel
from mxt_pipeline.caldb.products.effarea import EffectiveArea
from mxt_pipeline.caldb.products.gainoff import GainOffset
from mxt_pipeline.caldb.products.matrix import ResponseMatrix
from mxt_pipeline.caldb.products.multiplicity import Multiplicity
from mxt_pipeline.caldb.products.pattern import PatternModel
from mxt_pipeline.caldb.products.psf import PSFModel
from mxt_pipeline.caldb.products.syserr import Systematics
from mxt_pipeline.caldb.products.teldef import Teldef
from mxt_pipeline.caldb.products.vignet import Vignetting
from mxt_pipeline.errors import MXTCaldbError, MXTCaldbNotFound

__all__ = ["MODEL_CLASSES", "CODE_NAMES", "CalibrationSet", "load_calibration", "model_class"]

#: Model class of each MXT CALDB code name.
MODEL_CLASSES: dict[str, type[CalibrationModel]] = {
    cls.CODE: cls
    for cls in (Teldef, PSFModel, EffectiveArea, Vignetting, ResponseMatrix, CTIModel, GainOffset, Multiplicity,
                BadPixels, PatternModel, Systematics)
}  # fmt: skip
#: The code names, in the order of the calibration set's attributes.
CODE_NAMES = tuple(MODEL_CLASSES)


def model_class(code: str) -> type[CalibrationModel]:
    """The model class of a code name (case-insensitive)."""
    try:
        return MODEL_CLASSES[code.upper()]
    except KeyError:
        raise MXTCaldbError(f"no calibration model for code name {code!r} (known: {', '.join(CODE_NAMES)})",
                            keyword=code) from None  # fmt: skip


def load_calibration(code: str, path: str | os.PathLike[str]) -> CalibrationModel:
    """Read the model of code name ``code`` from a CALDB file.

    The loader of :class:`~mxt_pipeline.pipelines.caldb_bundle.CaldbProvider`.
    """
    return model_class(code).from_fits(path)


def _when(when: Any) -> Any:
    """A CaDBIO date: None -> ``'now'``; a number is a mission time (s since MJDREF)."""
    if when is None:
        return "now"
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        from mxt_pipeline.caldb.select import met_to_datetime

        return met_to_datetime(float(when))
    return when


def _client(caldb: Any):
    from mxt_pipeline.caldb import CaDBIO

    if caldb is None:
        return CaDBIO()
    if isinstance(caldb, CaDBIO):
        return caldb
    if isinstance(caldb, str) and caldb.startswith(("http://", "https://")):
        return CaDBIO(url=caldb)
    if isinstance(caldb, (str, os.PathLike)):
        return CaDBIO(caldb=caldb)
    return caldb  # any object with the CaDBIO search API


@dataclass
class CalibrationSet:
    """The MXT calibration models of one observation, by lower-case code name.

    Attributes
    ----------
    teldef, psf, effarea, vignet, matrix, cti, gainoff, multiplicity, badpix, pattern, syserr
        The models (None when not loaded).
    files : dict
        Code name -> file the model was read from (relative to the CALDB root when
        known, with ``[ext]`` when not the first extension).
    date : str
        The date the set was selected for (ISO), empty when built in memory.
    """

    teldef: Teldef | None = None
    psf: PSFModel | None = None
    effarea: EffectiveArea | None = None
    vignet: Vignetting | None = None
    matrix: ResponseMatrix | None = None
    cti: CTIModel | None = None
    gainoff: GainOffset | None = None
    multiplicity: Multiplicity | None = None
    badpix: BadPixels | None = None
    pattern: PatternModel | None = None
    syserr: Systematics | None = None
    files: dict[str, str] = field(default_factory=dict)
    date: str = ""

    # ---- aliases (names some consumers look up) ---------------------------------------------
    @property
    def vignetting(self) -> Vignetting | None:
        """Alias of ``vignet``."""
        return self.vignet

    @property
    def effective_area(self) -> EffectiveArea | None:
        """Alias of ``effarea``."""
        return self.effarea

    @property
    def rmf(self) -> ResponseMatrix | None:
        """Alias of ``matrix``."""
        return self.matrix

    @property
    def bad_pixels(self) -> BadPixels | None:
        """Alias of ``badpix``."""
        return self.badpix

    def __getitem__(self, code: str) -> CalibrationModel | None:
        """The model of a code name (case-insensitive)."""
        model_class(code)
        return getattr(self, code.lower())

    @property
    def codes(self) -> list[str]:
        """Code names of the models present."""
        return [c for c in CODE_NAMES if getattr(self, c.lower()) is not None]

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def from_caldb(cls, client: Any = None, when: datetime | date | str | float | None = None, *,
                   codes: Iterable[str] = CODE_NAMES, instrument: str = "MXT",
                   download_path: str | os.PathLike[str] | None = None) -> CalibrationSet:  # fmt: skip
        """Select and read the calibration valid at ``when``.

        Parameters
        ----------
        client : CaDBIO, path-like, URL or None
            The CALDB client; a path is a local CALDB root, an ``http(s)://`` string a
            service URL, None the defaults of :class:`~mxt_pipeline.caldb.CaDBIO`
            (``$MXT_CALDB_URL``, ``$CALDB``, the bundled CALDB).
        when : datetime, date, str, float or None
            Observation date (UTC datetime or date, ISO string, ``'now'``) or mission
            time in seconds (TT since MJDREF); None: now.
        codes : iterable of str
            Code names to load (all by default).
        download_path : path-like, optional
            Where a remote client puts the files.

        Raises
        ------
        MXTCaldbNotFound
            A code name has no file valid at ``when`` (the message names it).
        MXTCaldbAmbiguous
            Several datasets match one code name.
        """
        client = _client(client)
        date_arg = _when(when)
        root = getattr(getattr(client, "backend", None), "root", None)
        models: dict[str, Any] = {}
        files: dict[str, str] = {}
        for code in codes:
            code = code.upper()
            klass = model_class(code)
            try:
                path, xno = client.search_one(instrument, code, download_path, date=date_arg)
            except MXTCaldbNotFound as exc:
                raise MXTCaldbNotFound(f"{code}: {exc.message}", keyword=code) from None
            models[code.lower()] = klass.from_fits(path)
            rel: str = str(path)
            if root is not None:
                try:
                    rel = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
                except ValueError:
                    rel = str(path)
            files[code] = rel if xno <= 1 else f"{rel}[{xno}]"
        iso = date_arg.isoformat() if hasattr(date_arg, "isoformat") else str(date_arg)
        return cls(**models, files=files, date=iso)

    @classmethod
    def from_files(cls, files: Mapping[str, str | os.PathLike[str]]) -> CalibrationSet:
        """Read the models from explicit files (code name -> path)."""
        models = {code.lower(): load_calibration(code, path) for code, path in files.items()}
        return cls(**models, files={c.upper(): str(p) for c, p in files.items()})

    @classmethod
    def synthetic(cls, when: datetime | date | str | None = None) -> CalibrationSet:
        """The synthetic calibration set in memory (no file), valid at ``when`` (latest)."""
        from mxt_pipeline.caldb.synthetic.model import synthetic_models

        return cls(**synthetic_models(when))
