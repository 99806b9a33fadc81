"""Building the calibration index of a CALDB tree from the files' own keywords.

HEASARC layout (CAL/GEN/92-008 and the CALDB README): under a CALDB root the files of
one instrument live in ``data/<mission>/<instrument>/{bcf,cpf}/<kind>/``, its index in
``data/<mission>/<instrument>/caldb.indx`` with dated copies under ``index/``, and
``software/tools/caldb.config`` points HEASoft to the index.

Every calibrated HDU carries the keywords the index is made of (HEASARC "mandatory
calibration file keywords"): TELESCOP, INSTRUME, DETNAM, FILTER, CCLS0001 (CAL_CLAS),
CDTP0001 (CAL_DTYP), CCNM0001 (CAL_CNAM), CBD10001..CBD90001 (CAL_CBD), CVSD0001,
CVST0001 (CAL_VSD, CAL_VST) and CDES0001 (CAL_DESC).  An HDU without CCNM0001 is not
indexed.  TELESCOP/INSTRUME/DETNAM/FILTER missing from an extension are taken from
the primary header; DETNAM and FILTER default to ``NONE``, CDTP0001 to ``DATA``,
CVST0001 to ``00:00:00``.

Non-FITS datasets: the YAML files of the ``upload`` class, under
``data/<mission>/<instrument>/upload/<codename>/``, are indexed from their file names
(:mod:`mxt_pipeline.caldb.service.upload`) with ``CAL_XNO = -1``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mxt_pipeline.caldb.cif import N_CBD, CifRow, ref_time_mjd, write_cif
from mxt_pipeline.caldb.config import CaldbConfigEntry, config_path, update_config
from mxt_pipeline.caldb.expressions import parse_boundary
from mxt_pipeline.errors import MXTCaldbError, MXTFormatError, MXTInputError

__all__ = [
    "instrument_dir",
    "index_path",
    "today",
    "fits_dataset_rows",
    "upload_dataset_row",
    "supersede_uploads",
    "scan_calibration_files",
    "write_index",
    "build_index",
    "is_fits_file",
    "CLASS_DIRS",
    "UPLOAD_DIR",
]

#: Sub-directories holding FITS calibration files, by CAL_CLAS.
CLASS_DIRS = {"BCF": "bcf", "CPF": "cpf"}
#: Sub-directory of the YAML upload class.
UPLOAD_DIR = "upload"


def instrument_dir(caldb_root: str | os.PathLike[str], telescop: str, instrume: str) -> Path:
    """``<root>/data/<mission>/<instrument>`` (lower case)."""
    return Path(caldb_root) / "data" / telescop.lower() / instrume.lower()


def index_path(caldb_root: str | os.PathLike[str], telescop: str, instrume: str) -> Path:
    """``<root>/data/<mission>/<instrument>/caldb.indx``."""
    return instrument_dir(caldb_root, telescop, instrume) / "caldb.indx"


def today() -> str:
    """Today's UTC date ``YYYY-MM-DD`` (``SOURCE_DATE_EPOCH`` pins it, for reproducible files)."""
    from mxt_pipeline.io.fits import product_date

    return product_date()[:10]


def is_fits_file(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the FITS primary card (or is gzip-compressed FITS)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    if head.startswith(b"SIMPLE  ="):
        return True
    return head[:2] == b"\x1f\x8b" and ".fit" in path.name.lower()


def _hdu_headers(path: Path) -> list:
    """Every header of a FITS file, through the io layer."""
    from mxt_pipeline.io.fits import read_header

    headers = []
    while True:
        try:
            headers.append(read_header(path, len(headers)))
        except MXTFormatError as exc:
            if headers and exc.message == "HDU missing":
                return headers
            raise


def _text(header, key: str, default: str | None, path: Path, hdu: int) -> str:
    value = header.get(key, default)
    if value is None:
        raise MXTFormatError("required calibration keyword missing", file=path, hdu=hdu, keyword=key)
    if not isinstance(value, str):
        raise MXTFormatError(
            f"value {value!r} must be a string", file=path, hdu=hdu, keyword=key
        )
    return value.strip()


def fits_dataset_rows(
    path: str | os.PathLike[str],
    *,
    cal_dir: str,
    cal_file: str | None = None,
    telescop: str | None = None,
    instrume: str | None = None,
    cal_clas: str | None = None,
    cal_date: str | None = None,
) -> list[CifRow]:
    """One CIF row per calibrated HDU of a FITS file.

    Parameters
    ----------
    path : path-like
        The file to read.
    cal_dir : str
        CAL_DIR of the file (relative to the CALDB root).
    cal_file : str, optional
        CAL_FILE (default: the file's name; the service passes the uploaded name).
    telescop, instrume : str, optional
        Required values of TELESCOP/INSTRUME (a mismatch is an error).
    cal_clas : str, optional
        Required CCLS0001 (the class of the directory the file sits in).
    cal_date : str, optional
        CAL_DATE of the rows (default: :func:`today`).

    Raises
    ------
    MXTFormatError
        Naming the file, HDU and keyword of a missing or malformed keyword.
    """
    path = Path(path)
    cal_file = cal_file or path.name
    cal_date = cal_date or today()
    headers = _hdu_headers(path)
    primary = headers[0]
    rows = []
    for xno, hdr in enumerate(headers):
        if "CCNM0001" not in hdr:
            continue

        def inherited(key: str, default: str | None, hdr=hdr, xno=xno) -> str:
            return _text(hdr if key in hdr else primary, key, default, path, xno)

        tel = inherited("TELESCOP", None)
        inst = inherited("INSTRUME", None)
        if telescop is not None and tel.upper() != telescop.upper():
            raise MXTFormatError(f"is {tel!r}, expected {telescop!r}", file=path, hdu=xno, keyword="TELESCOP")
        if instrume is not None and inst.upper() != instrume.upper():
            raise MXTFormatError(f"is {inst!r}, expected {instrume!r}", file=path, hdu=xno, keyword="INSTRUME")
        clas = _text(hdr, "CCLS0001", None, path, xno).upper()
        if cal_clas is not None and clas != cal_clas.upper():
            raise MXTFormatError(
                f"is {clas!r} but the file lies in the {cal_clas} tree", file=path, hdu=xno, keyword="CCLS0001"
            )
        cbd = []
        for n in range(1, N_CBD + 1):
            key = f"CBD{n}0001"
            text = _text(hdr, key, "NONE", path, xno)
            try:
                parse_boundary(text)
            except MXTInputError as exc:
                raise MXTFormatError(exc.message, file=path, hdu=xno, keyword=key) from None
            cbd.append(text or "NONE")
        vsd = _text(hdr, "CVSD0001", None, path, xno)
        vst = _text(hdr, "CVST0001", "00:00:00", path, xno)
        for key, args in (("CVSD0001", (vsd,)), ("CVST0001", ("2000-01-01", vst))):
            try:
                ref_time_mjd(*args)
            except MXTInputError as exc:
                raise MXTFormatError(exc.message, file=path, hdu=xno, keyword=key) from None
        fields = {
            "telescop": tel.upper(),
            "instrume": inst.upper(),
            "detnam": inherited("DETNAM", "NONE") or "NONE",
            "filter": inherited("FILTER", "NONE") or "NONE",
            "cal_dir": cal_dir,
            "cal_file": cal_file,
            "cal_clas": clas,
            "cal_dtyp": _text(hdr, "CDTP0001", "DATA", path, xno).upper(),
            "cal_cnam": _text(hdr, "CCNM0001", None, path, xno).upper(),
            "cal_cbd": tuple(cbd),
            "cal_xno": xno,
            "cal_vsd": vsd,
            "cal_vst": vst,
            "cal_qual": 0,
            "cal_date": cal_date,
            # Descriptions longer than the 70-character column are cut, not refused.
            "cal_desc": _text(hdr, "CDES0001", "", path, xno)[:70],
        }
        try:
            rows.append(CifRow(**fields))
        except MXTInputError as exc:
            raise MXTFormatError(exc.message, file=path, hdu=xno) from None
    return rows


def upload_dataset_row(
    name: str,
    *,
    telescop: str = "SVOM",
    cal_dir: str | None = None,
    cal_date: str | None = None,
) -> CifRow:
    """The CIF row of an upload-class YAML file, from its name (CAL_XNO = -1)."""
    from mxt_pipeline.caldb.service.upload import parse_upload_name, upload_cal_dir

    parsed = parse_upload_name(name)
    return CifRow(
        telescop=telescop.upper(),
        instrume=parsed.instrument,
        cal_cnam=parsed.codename,
        cal_dir=cal_dir or upload_cal_dir(parsed.instrument, parsed.codename, telescop),
        cal_file=name,
        cal_vsd=parsed.cal_vsd,
        cal_vst=parsed.cal_vst,
        cal_clas="BCF",
        cal_dtyp="DATA",
        cal_xno=-1,
        cal_date=cal_date or today(),
        cal_desc=f"onboard upload {parsed.codename} v{parsed.version:02d}"[:70],
    )


def supersede_uploads(rows: list[CifRow]) -> list[CifRow]:
    """Set CAL_QUAL 5 on upload rows superseded by a higher version.

    Two uploads of the same instrument, code name and validity start differ only by
    their version: the highest is the one in force (``udcif`` convention: the old
    row's quality becomes 5).
    """
    from mxt_pipeline.caldb.service.upload import parse_upload_name

    best: dict[tuple, int] = {}
    for r in rows:
        if r.cal_xno == -1:
            key = (r.instrume, r.cal_cnam, r.ref_time)
            best[key] = max(best.get(key, 0), parse_upload_name(r.cal_file).version)
    out = []
    for r in rows:
        if r.cal_xno == -1 and parse_upload_name(r.cal_file).version < best[(r.instrume, r.cal_cnam, r.ref_time)]:
            r = r.with_quality(5)
        out.append(r)
    return out


def _apply_quality(rows: list[CifRow], quality: Mapping[str, int] | None) -> list[CifRow]:
    if not quality:
        return rows
    known = {r.cal_file for r in rows} | {r.relpath for r in rows}
    unknown = sorted(set(quality) - known)
    if unknown:
        raise MXTCaldbError(f"quality given for files not in the CALDB: {', '.join(unknown)}")
    out = []
    for r in rows:
        q = quality.get(r.relpath, quality.get(r.cal_file))
        out.append(r if q is None else r.with_quality(int(q)))
    return out


def scan_calibration_files(
    caldb_root: str | os.PathLike[str],
    telescop: str = "SVOM",
    instrume: str = "MXT",
    quality: Mapping[str, int] | None = None,
    *,
    cal_date: str | None = None,
) -> list[CifRow]:
    """The CIF rows of every calibration file of one instrument under ``caldb_root``.

    Scans ``data/<mission>/<inst>/{bcf,cpf}/**`` for FITS files (hidden files and
    non-FITS files are skipped) and ``data/<mission>/<inst>/upload/**`` for YAML
    files of the upload class.

    Parameters
    ----------
    quality : mapping, optional
        File name (or ``CAL_DIR/CAL_FILE``) -> CAL_QUAL, e.g. ``{"psf_v1.fits": 5}`` for
        a superseded file.  A name that is not in the CALDB is an error.
    cal_date : str, optional
        CAL_DATE of every row (default :func:`today`).
    """
    root = Path(caldb_root)
    base = instrument_dir(root, telescop, instrume)
    cal_date = cal_date or today()
    rows: list[CifRow] = []
    for clas, sub in CLASS_DIRS.items():
        top = base / sub
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*")):
            if not path.is_file() or path.name.startswith(".") or not is_fits_file(path):
                continue
            rel_dir = path.parent.relative_to(root).as_posix()
            rows += fits_dataset_rows(
                path, cal_dir=rel_dir, telescop=telescop, instrume=instrume, cal_clas=clas, cal_date=cal_date
            )
    up = base / UPLOAD_DIR
    if up.is_dir():
        from mxt_pipeline.caldb.service.upload import parse_upload_name, parse_upload_yaml

        for path in sorted(up.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            try:
                parsed = parse_upload_name(path.name)
                parse_upload_yaml(path.read_bytes(), path.name)
            except MXTInputError as exc:
                raise MXTFormatError(exc.message, file=path) from None
            if parsed.instrument != instrume.upper():
                raise MXTFormatError(f"upload for {parsed.instrument} in the {instrume} tree", file=path)
            rows.append(
                upload_dataset_row(
                    path.name, telescop=telescop, cal_dir=path.parent.relative_to(root).as_posix(), cal_date=cal_date
                )
            )
        rows = supersede_uploads(rows)
    return _apply_quality(rows, quality)


def write_index(
    rows: list[CifRow],
    caldb_root: str | os.PathLike[str],
    telescop: str = "SVOM",
    instrume: str = "MXT",
    *,
    caldbver: str | None = None,
    dated_copy: bool = True,
) -> Path:
    """Write ``caldb.indx`` of one instrument (atomically) and its dated copy.

    The dated copy is ``index/caldb.indx<YYYYMMDD>`` beside it (today's date; a second
    write the same day replaces it), as kept by HEASARC for each CALDB release.

    Returns
    -------
    pathlib.Path
        The ``caldb.indx`` written.
    """
    from mxt_pipeline.io.fits import atomic_write_bytes

    path = index_path(caldb_root, telescop, instrume)
    write_cif(rows, path, telescop=telescop.upper(), instrume=instrume.upper(), caldbver=caldbver)
    if dated_copy:
        stamp = today().replace("-", "")
        atomic_write_bytes(path.parent / "index" / f"caldb.indx{stamp}", path.read_bytes())
    return path


def build_index(
    caldb_root: str | os.PathLike[str],
    telescop: str = "SVOM",
    instrume: str = "MXT",
    quality: Mapping[str, int] | None = None,
    *,
    cal_date: str | None = None,
    caldbver: str | None = None,
    write_config_line: bool = True,
) -> Path:
    """Scan one instrument's calibration files and write its index.

    Writes ``data/<mission>/<inst>/caldb.indx``, its dated copy under ``index/`` and
    (unless ``write_config_line`` is False) the instrument's line of
    ``software/tools/caldb.config``.  The result depends only on the files, the
    arguments and ``SOURCE_DATE_EPOCH`` (dates), so a rebuild reproduces it.

    Parameters
    ----------
    caldb_root : path-like
        The CALDB root (``$CALDB``).
    telescop, instrume : str
        Mission and instrument.
    quality : mapping, optional
        File name -> CAL_QUAL overrides (5 for superseded files).
    cal_date : str, optional
        CAL_DATE of the rows, ``YYYY-MM-DD`` (default :func:`today`).
    caldbver : str, optional
        CALDBVER keyword (default ``<inst><YYYYMMDD>``).

    Returns
    -------
    pathlib.Path
        The index written.
    """
    rows = scan_calibration_files(caldb_root, telescop, instrume, quality, cal_date=cal_date)
    path = write_index(rows, caldb_root, telescop, instrume, caldbver=caldbver)
    if write_config_line:
        update_config(config_path(caldb_root), CaldbConfigEntry.default(telescop, instrume))
    return path
