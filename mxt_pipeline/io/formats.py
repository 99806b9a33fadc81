"""The FITS product formats of the MXT pipeline.

Each product type is one :class:`~mxt_pipeline.io.spec.ProductSpec`, registered under
its ``CONTENT`` value (the primary-header keyword by which ``mxt validate`` recognises a
file).  ``docs/formats.md`` is generated from this module by
``python -m mxt_pipeline.io.docgen`` and a test keeps it in sync.

Conventions shared by every product (OGIP/93-003, OGIP/94-001):

* ``TELESCOP='SVOM'``, ``INSTRUME='MXT'`` in every HDU;
* time: TT seconds since ``MJDREFI=57754`` (+ ``MJDREFF=0``), ``TIMESYS='TT'``,
  ``TIMEUNIT='s'``, ``TIMEREF='LOCAL'``, with ``TSTART``/``TSTOP`` and
  ``DATE-OBS``/``DATE-END`` in every timed HDU;
* ``HDUCLASS='OGIP'`` with ``HDUCLAS1``/``HDUCLAS2`` per HDU;
* ``TLMINn``/``TLMAXn`` on integer columns (legal limits);
* ``CREATOR``, ``DATE``, ``CHECKSUM`` and ``DATASUM`` in every HDU.
"""

from __future__ import annotations

from mxt_pipeline import constants as C
from mxt_pipeline.io.spec import ColumnSpec, HDUSpec, KeywordSpec, ProductSpec

__all__ = [
    "REGISTRY",
    "register",
    "get_spec",
    "L1_RAW",
    "ATT",
    "SAA",
    "ANG",
    "L2_EVT",
    "SRCLIST",
    "LIGHTCURVE",
    "CALDB_CIF",
    "CAMPAIGN",
    "PATTERN_CODES",
    "STATUS_BITS",
]

REGISTRY: dict[str, ProductSpec] = {}


def register(spec: ProductSpec) -> ProductSpec:
    """Add a product spec to the registry (its CONTENT must be new) and return it."""
    if spec.content in REGISTRY and REGISTRY[spec.content] is not spec:
        raise ValueError(f"product {spec.content!r} is already registered")
    REGISTRY[spec.content] = spec
    return spec


def get_spec(content: str) -> ProductSpec:
    """Return the registered spec whose CONTENT is ``content``.

    Raises
    ------
    KeyError
        With the list of known product types, when unknown.
    """
    try:
        return REGISTRY[content]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown product type {content!r}; known: {known}") from None


# --------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------

#: EPIC-pn style pattern codes: 0 single; 1-4 doubles; 5-8 triples; 9-12 quadruples;
#: 13 any other shape (invalid, typically pile-up or cosmic rays).
PATTERN_CODES = tuple(range(14))
PATTERN_INVALID = 13

#: STATUS bits of L2 events (a bit set means the condition holds).
STATUS_BITS = {
    "BADPIX": 1,  # a hit of the event lies on a CALDB bad pixel
    "HOTPIX": 2,  # a hit lies on a hot pixel found in the data
    "NEAR_BADPIX": 4,  # the event touches a bad pixel's neighbour
    "BORDER": 8,  # the event touches the detector edge (charge may be lost)
    "INVALID_PATTERN": 16,  # pattern 13: shape not in the table
    "OUT_OF_BAND": 32,  # energy outside 0.2-10 keV
    "PILEUP": 64,  # multiplicity above 4 (two photons merged)
}

_OBS_ID = KeywordSpec("OBS_ID", str, "observation identifier")
_OBJECT = KeywordSpec("OBJECT", str, "target name", required=False)


def _time(desc: str = "event arrival time", *, sorted_: bool = True) -> ColumnSpec:
    return ColumnSpec("TIME", "D", "s", f"{desc} (TT seconds since MJDREF)", sorted=sorted_)


def _gti_hdu() -> HDUSpec:
    return HDUSpec(
        "GTI",
        "good time intervals (OGIP standard GTI)",
        columns=(
            ColumnSpec("START", "D", "s", "start of the interval", sorted=True),
            ColumnSpec("STOP", "D", "s", "end of the interval", sorted=True),
        ),
        keywords=(
            KeywordSpec("HDUCLAS1", str, "", value="GTI"),
            KeywordSpec("HDUCLAS2", str, "", value="STANDARD"),
        ),
    )


def _gaps_hdu() -> HDUSpec:
    return HDUSpec(
        "GAPS",
        "intervals excluded from the good time, each with the origin of the gap",
        columns=(
            ColumnSpec("START", "D", "s", "start of the gap", sorted=True),
            ColumnSpec("STOP", "D", "s", "end of the gap"),
            ColumnSpec(
                "ORIGIN",
                "10A",
                None,
                "why the time is lost: " + ", ".join(C.GAP_ORIGINS),
                allowed=C.GAP_ORIGINS,
            ),
        ),
        keywords=(
            KeywordSpec("HDUCLAS1", str, "", value="GTI"),
            KeywordSpec("HDUCLAS2", str, "", value="GAPS"),
        ),
    )


def _raw_yz(prefix: str = "RAW", tform: str = "I") -> tuple[ColumnSpec, ColumnSpec]:
    kwargs = {"tlmin": 0, "tlmax": C.N_PIX - 1}
    return (
        ColumnSpec(f"{prefix}Y", tform, "pixel", "detector column (one amplifier each)", **kwargs),
        ColumnSpec(f"{prefix}Z", tform, "pixel", "detector row (charge transfer axis)", **kwargs),
    )


# --------------------------------------------------------------------------------------
# L1 raw event list: one file per ground-station pass
# --------------------------------------------------------------------------------------

L1_RAW = register(
    ProductSpec(
        content="MXT_L1_RAW",
        title="L1 raw event list (one ground-station pass)",
        description=(
            "Pixel hits above the on-board threshold, as telemetered, with no pattern "
            "reconstruction. One file per ground-station pass; passes may overlap and "
            "arrive out of order. The GTI extension gives the time the pass covers."
        ),
        filename="mxt_l1_raw_<OBS_ID>_p<PASS_ID>.fits",
        primary_keywords=(
            _OBS_ID,
            _OBJECT,
            KeywordSpec("PASS_ID", int, "ground-station pass number"),
            KeywordSpec("STATION", str, "ground station of the pass"),
        ),
        hdus=(
            HDUSpec(
                "EVENTS",
                "one row per pixel hit above the primary threshold",
                columns=(
                    _time("frame time of the hit"),
                    ColumnSpec("FRAME", "J", None, "frame counter", tlmin=0, tlmax=2**31 - 1),
                    *_raw_yz(),
                    ColumnSpec("PHA", "I", "adu", "raw pixel value", tlmin=0, tlmax=C.PHA_MAX),
                ),
                keywords=(
                    KeywordSpec("HDUCLAS1", str, "", value="EVENTS"),
                    KeywordSpec("HDUCLAS2", str, "", value="RAW"),
                    KeywordSpec("FRAMETIM", float, "[s] frame integration time"),
                    _OBS_ID,
                ),
            ),
            _gti_hdu(),
        ),
    )
)

# --------------------------------------------------------------------------------------
# Auxiliary files
# --------------------------------------------------------------------------------------

ATT = register(
    ProductSpec(
        content="MXT_ATT",
        title="attitude (ATT)",
        description=(
            "Spacecraft attitude. QPARAM is the unit quaternion (x, y, z, w; scalar last) "
            "rotating instrument-frame vectors into ICRS: the boresight is the instrument +X "
            "axis, +Y and +Z the DETY and DETZ directions. RA, DEC, ROLL repeat it: "
            "pointing of +X and the position angle of +Z (east of north)."
        ),
        filename="mxt_att_<OBS_ID>.fits",
        primary_keywords=(_OBS_ID,),
        hdus=(
            HDUSpec(
                "ATTITUDE",
                "attitude samples",
                columns=(
                    _time("sample time"),
                    ColumnSpec("QPARAM", "4D", None, "unit quaternion x, y, z, w"),
                    ColumnSpec("RA", "D", "deg", "right ascension of the boresight"),
                    ColumnSpec("DEC", "D", "deg", "declination of the boresight", tlmin=-90, tlmax=90),
                    ColumnSpec("ROLL", "D", "deg", "position angle of +Z, east of north"),
                ),
                keywords=(
                    KeywordSpec("HDUCLAS1", str, "", value="TEMPORALDATA"),
                    KeywordSpec("HDUCLAS2", str, "", value="ATTITUDE"),
                ),
            ),
        ),
    )
)

SAA = register(
    ProductSpec(
        content="MXT_SAA",
        title="South Atlantic Anomaly intervals (one file per week)",
        description=(
            "Intervals when the spacecraft is inside the SAA, as delivered weekly by the "
            "science database. WEEK counts whole weeks since MJDREF (2017-01-01)."
        ),
        filename="mxt_saa_w<WEEK>.fits",
        primary_keywords=(KeywordSpec("WEEK", int, "week number since MJDREF"),),
        hdus=(
            HDUSpec(
                "SAA",
                "SAA passages",
                columns=(
                    ColumnSpec("START", "D", "s", "entry into the SAA", sorted=True),
                    ColumnSpec("STOP", "D", "s", "exit from the SAA"),
                ),
                keywords=(
                    KeywordSpec("HDUCLAS1", str, "", value="GTI"),
                    KeywordSpec("HDUCLAS2", str, "", value="SAA"),
                    KeywordSpec("WEEK", int, "week number since MJDREF"),
                ),
            ),
        ),
    )
)

ANG = register(
    ProductSpec(
        content="MXT_ANG",
        title="angles to the Earth, Sun and Moon (ANG)",
        description="Boresight angles sampled along the orbit.",
        filename="mxt_ang_<OBS_ID>.fits",
        primary_keywords=(_OBS_ID,),
        hdus=(
            HDUSpec(
                "ANG",
                "angle samples",
                columns=(
                    _time("sample time"),
                    ColumnSpec(
                        "EARTH_ELV", "E", "deg", "elevation of the boresight above the Earth limb"
                    ),
                    ColumnSpec("SUN_ANGLE", "E", "deg", "angle boresight-Sun", tlmin=0, tlmax=180),
                    ColumnSpec("MOON_ANGLE", "E", "deg", "angle boresight-Moon", tlmin=0, tlmax=180),
                ),
                keywords=(
                    KeywordSpec("HDUCLAS1", str, "", value="TEMPORALDATA"),
                    KeywordSpec("HDUCLAS2", str, "", value="ANGLES"),
                ),
            ),
        ),
    )
)

# --------------------------------------------------------------------------------------
# L2 calibrated events
# --------------------------------------------------------------------------------------

L2_EVT = register(
    ProductSpec(
        content="MXT_L2_EVT",
        title="L2 calibrated event list",
        description=(
            "Reconstructed, calibrated and screened events of one observation, with the "
            "good time (GTI) and every excluded interval with its origin (GAPS). DETY/DETZ "
            "are pixels from the optical axis; X/Y are sky pixels of a tangent-plane "
            "projection (TCTYP/TCRVL/TCRPX/TCDLT keywords) about RA_NOM/DEC_NOM."
        ),
        filename="mxt_l2_evt_<OBS_ID>.fits",
        primary_keywords=(
            _OBS_ID,
            _OBJECT,
            KeywordSpec("RA_NOM", float, "[deg] nominal pointing RA"),
            KeywordSpec("DEC_NOM", float, "[deg] nominal pointing Dec"),
        ),
        hdus=(
            HDUSpec(
                "EVENTS",
                "one row per reconstructed event",
                columns=(
                    _time(),
                    ColumnSpec("FRAME", "J", None, "frame counter", tlmin=0, tlmax=2**31 - 1),
                    *_raw_yz(),
                    ColumnSpec("DETY", "E", "pixel", "detector coordinate from the optical axis"),
                    ColumnSpec("DETZ", "E", "pixel", "detector coordinate from the optical axis"),
                    ColumnSpec("X", "E", "pixel", "sky pixel (tangent plane)"),
                    ColumnSpec("Y", "E", "pixel", "sky pixel (tangent plane)"),
                    ColumnSpec("RA", "D", "deg", "right ascension of the event"),
                    ColumnSpec("DEC", "D", "deg", "declination of the event", tlmin=-90, tlmax=90),
                    ColumnSpec("PHA", "J", "adu", "summed raw value of the hits", tlmin=0, tlmax=2**31 - 1),
                    ColumnSpec(
                        "PI", "I", "chan", "pulse invariant channel (10 eV)", tlmin=0, tlmax=C.N_PI_CHANNELS - 1
                    ),
                    ColumnSpec("ENERGY", "E", "keV", "calibrated event energy"),
                    ColumnSpec(
                        "PATTERN",
                        "I",
                        None,
                        "0 single; 1-4 doubles; 5-8 triples; 9-12 quadruples; 13 invalid",
                        tlmin=0,
                        tlmax=13,
                        allowed=PATTERN_CODES,
                    ),
                    ColumnSpec("MULTIPLICITY", "I", None, "number of hits in the event", tlmin=1, tlmax=9),
                    ColumnSpec(
                        "STATUS",
                        "J",
                        None,
                        "quality bits: " + ", ".join(f"{k}={v}" for k, v in STATUS_BITS.items()),
                        tlmin=0,
                        tlmax=2**31 - 1,
                    ),
                ),
                keywords=(
                    KeywordSpec("HDUCLAS1", str, "", value="EVENTS"),
                    KeywordSpec("HDUCLAS2", str, "", value="ALL"),
                    KeywordSpec("FRAMETIM", float, "[s] frame integration time"),
                    KeywordSpec("ONTIME", float, "[s] sum of the GTIs"),
                    KeywordSpec("LIVETIME", float, "[s] ONTIME corrected for dead time"),
                    KeywordSpec("EXPOSURE", float, "[s] exposure on axis"),
                    _OBS_ID,
                ),
            ),
            _gti_hdu(),
            _gaps_hdu(),
        ),
    )
)

# --------------------------------------------------------------------------------------
# Source list MXT-SOP-SKY
# --------------------------------------------------------------------------------------

SRCLIST = register(
    ProductSpec(
        content="MXT_SOP_SKY",
        title="source list MXT-SOP-SKY",
        description=(
            "Sources found by the two-stage detection: positions with 68% and 90% error "
            "radii (the CALDB systematic added in quadrature), counts per energy band, "
            "detection likelihood DET_ML and the SVOM alert quality factor QF (4: R90 < 30\", "
            "3: 30-60\", 2: 60-120\", 1: 120-300\", 0: worse, or a flagged position). FLAGS marks "
            "a fitted position that is not on the detector's sensitive area (bit 1 OFF_CHIP: "
            "outside the chip, i.e. off the field of view; bit 2 UNEXPOSED: in a masked area; "
            "bit 4 OUT_OF_FOV: an out-of-field source, its spot off the field, seen through its "
            "cross arms); such a source is listed (its arms or wings are in the data and in the "
            "model of its neighbours) but is never an in-field source: select FLAGS & 7 == 0 "
            "for those. Bit 8 PAIR marks the fainter member of a confused pair, added by the "
            "pair test after the ML fit (an in-field source whose DET_ML may be below MLTHRESH). "
            "Products written before FLAGS existed lack the column. The BANDS extension lists the "
            "energy bands; SRCBANDS gives the counts and rates of each source in each band. "
            "An empty field gives zero rows."
        ),
        filename="mxt_sop_sky_<OBS_ID>.fits",
        primary_keywords=(_OBS_ID, _OBJECT),
        hdus=(
            HDUSpec(
                "SRCLIST",
                "one row per detected source",
                columns=(
                    ColumnSpec("SRC_ID", "J", None, "source number", tlmin=1, tlmax=2**31 - 1),
                    ColumnSpec("RA", "D", "deg", "right ascension (ICRS)"),
                    ColumnSpec("DEC", "D", "deg", "declination (ICRS)", tlmin=-90, tlmax=90),
                    ColumnSpec("ERR_R68", "E", "arcsec", "68% error radius incl. systematic", tlmin=0),
                    ColumnSpec("ERR_R90", "E", "arcsec", "90% error radius incl. systematic", tlmin=0),
                    ColumnSpec("RAWY", "E", "pixel", "fitted position, detector column"),
                    ColumnSpec("RAWZ", "E", "pixel", "fitted position, detector row"),
                    ColumnSpec("X", "E", "pixel", "fitted position, sky pixel"),
                    ColumnSpec("Y", "E", "pixel", "fitted position, sky pixel"),
                    ColumnSpec("OFFAXIS", "E", "arcmin", "angle from the optical axis", tlmin=0),
                    ColumnSpec("COUNTS", "E", "count", "source counts, sum of the bands (per band: SRCBANDS)", tlmin=0),
                    ColumnSpec("COUNTS_ERR", "E", "count", "1-sigma error of COUNTS (per band: SRCBANDS)", tlmin=0),
                    ColumnSpec("RATE", "E", "count/s", "source count rate, all bands", tlmin=0),
                    ColumnSpec("RATE_ERR", "E", "count/s", "1-sigma error of RATE", tlmin=0),
                    ColumnSpec("DET_ML", "E", None, "detection likelihood -ln(P_false)", tlmin=0),
                    ColumnSpec("QF", "I", None, "alert quality factor 0-4 (0 when FLAGS & 7 is not 0)", tlmin=0, tlmax=4,
                               allowed=(0, 1, 2, 3, 4)),
                    ColumnSpec("FLAGS", "I", None, "source flags, bit field (0: an in-field source on the chip's "
                               "sensitive area); 1 OFF_CHIP: fitted position outside the 256 x 256 pixels (off the "
                               "field of view, seen through its PSF arms); 2 UNEXPOSED: on the chip but with no "
                               "exposure within 1 pixel (masked bad pixels or columns); 4 OUT_OF_FOV: out-of-field "
                               "source, spot off the detection grid, fitted from its cross arms (never in-field); "
                               "8 PAIR: fainter member of a confused pair, added by the pair test (in-field)",
                               tlmin=0, tlmax=15, allowed=tuple(range(16)), required=False),
                ),
                keywords=(
                    KeywordSpec("HDUCLAS1", str, "", value="SRCLIST"),
                    KeywordSpec("HDUCLAS2", str, "", value="SKY"),
                    KeywordSpec("NBANDS", int, "number of energy bands"),
                    KeywordSpec("SYSERR", float, "[arcsec] systematic added in quadrature"),
                    KeywordSpec("MLTHRESH", float, "DET_ML threshold of the list"),
                    _OBS_ID,
                ),
            ),
            HDUSpec(
                "BANDS",
                "the energy bands of SRCBANDS (and of the vector columns of SRCLIST, if any)",
                columns=(
                    ColumnSpec("BAND_ID", "I", None, "band index (1-based)", tlmin=1, tlmax=99),
                    ColumnSpec("E_MIN", "E", "keV", "lower band edge", tlmin=0),
                    ColumnSpec("E_MAX", "E", "keV", "upper band edge", tlmin=0),
                    ColumnSpec("BKG_SKY", "E", "count/pixel", "fitted sky (vignetted CXB) background per pixel "
                               "of full exposure on the optical axis", tlmin=0, required=False),
                    ColumnSpec("BKG_PART", "E", "count/pixel", "fitted flat (particle) background per pixel of "
                               "full exposure", tlmin=0, required=False),
                ),
                keywords=(
                    KeywordSpec("HDUCLAS1", str, "", value="SRCLIST"),
                    KeywordSpec("HDUCLAS2", str, "", value="BANDS"),
                ),
                timed=False,
            ),
            HDUSpec(
                "SRCBANDS",
                "counts and rates of every source in every band: one row per source and band "
                "(as emldetect's per-band rows), any number of bands",
                columns=(
                    ColumnSpec("SRC_ID", "J", None, "source number (SRCLIST)", tlmin=1, tlmax=2**31 - 1),
                    ColumnSpec("BAND_ID", "I", None, "band index (BANDS)", tlmin=1, tlmax=99),
                    ColumnSpec("COUNTS", "E", "count", "source counts in the band", tlmin=0),
                    ColumnSpec("COUNTS_ERR", "E", "count", "1-sigma error of COUNTS", tlmin=0),
                    ColumnSpec("RATE", "E", "count/s", "vignetting-corrected count rate in the band", tlmin=0),
                    ColumnSpec("RATE_ERR", "E", "count/s", "1-sigma error of RATE", tlmin=0),
                ),
                keywords=(
                    KeywordSpec("HDUCLAS1", str, "", value="SRCLIST"),
                    KeywordSpec("HDUCLAS2", str, "", value="SRCBANDS"),
                ),
                required=False,
                timed=False,
            ),
        ),
    )
)

# --------------------------------------------------------------------------------------
# Light curve (OGIP/93-003)
# --------------------------------------------------------------------------------------

LIGHTCURVE = register(
    ProductSpec(
        content="MXT_LC",
        title="source light curve",
        description=(
            "Background-subtracted, exposure-corrected count rate of one source "
            "(OGIP/93-003). TIME is the bin centre (TIMEPIXR=0.5), TIMEDEL its width; "
            "FRACEXP the fraction of the bin inside the good time, after dead time. Bins "
            "wholly in gaps are not written: a gap is not a rate of zero. ERR_LO/ERR_HI "
            "are the asymmetric 1-sigma errors (confidence limits of the ERRMETH method, "
            "exact Poisson by default: they hold the true rate in more than 68.3% of the "
            "bins at low counts), ERROR their mean. ERR_CHI2 is the symmetric error to use "
            "as sigma in a chi-square fit (about 68% coverage, reduced chi-square near 1); "
            "or fit COUNTS with the Cash statistic. Products written before ERR_CHI2 "
            "existed lack it."
        ),
        filename="mxt_lc_<OBS_ID>_src<SRC_ID>.fits",
        primary_keywords=(_OBS_ID, _OBJECT),
        hdus=(
            HDUSpec(
                "RATE",
                "one row per time bin",
                columns=(
                    _time("bin centre"),
                    ColumnSpec("TIMEDEL", "D", "s", "bin width", tlmin=0),
                    ColumnSpec("RATE", "E", "count/s", "net count rate"),
                    ColumnSpec("ERROR", "E", "count/s", "1-sigma error (mean of ERR_LO, ERR_HI)", tlmin=0),
                    ColumnSpec("ERR_LO", "E", "count/s", "lower 1-sigma error", tlmin=0),
                    ColumnSpec("ERR_HI", "E", "count/s", "upper 1-sigma error", tlmin=0),
                    ColumnSpec("ERR_CHI2", "E", "count/s", "symmetric 1-sigma error for chi-square fits: "
                               "sqrt((COUNTS + 1) + AREARAT^2 (N_bkg + 1)) / (exposure PSFFRAC) (Mighell 1999)",
                               tlmin=0, required=False),
                    ColumnSpec("FRACEXP", "E", None, "fractional exposure of the bin", tlmin=0, tlmax=1),
                    ColumnSpec("COUNTS", "J", "count", "counts in the source region", tlmin=0, tlmax=2**31 - 1),
                    ColumnSpec("BKG_RATE", "E", "count/s", "background rate scaled to the source region"),
                    ColumnSpec("BKG_ERROR", "E", "count/s", "1-sigma error of BKG_RATE", tlmin=0),
                ),
                keywords=(
                    KeywordSpec("HDUCLAS1", str, "", value="LIGHTCURVE"),
                    KeywordSpec("HDUCLAS2", str, "", value="NET"),
                    KeywordSpec("HDUCLAS3", str, "", value="RATE"),
                    KeywordSpec("TIMEPIXR", float, "bin reference: 0.5 = centre", value=0.5),
                    KeywordSpec("SRC_ID", int, "source number in the source list"),
                    KeywordSpec("RA_OBJ", float, "[deg] source RA"),
                    KeywordSpec("DEC_OBJ", float, "[deg] source Dec"),
                    KeywordSpec("E_MIN", float, "[keV] lower energy bound"),
                    KeywordSpec("E_MAX", float, "[keV] upper energy bound"),
                    KeywordSpec(
                        "BINNING", str, "binning method", allowed=("FIXED", "SNR", "BLOCKS")
                    ),
                    _OBS_ID,
                ),
            ),
            _gti_hdu(),
            _gaps_hdu(),
        ),
    )
)

# --------------------------------------------------------------------------------------
# CALDB calibration index file
# --------------------------------------------------------------------------------------

CALDB_CIF = register(
    ProductSpec(
        content="CALDB_CIF",
        title="CALDB calibration index file (caldb.indx)",
        description=(
            "HEASARC calibration index (CIF 1.1): one row per calibrated HDU. Recognised by "
            "EXTNAME='CIF' (HEASARC tools do not write CONTENT)."
        ),
        filename="caldb.indx",
        timed=False,
        hdus=(
            HDUSpec(
                "CIF",
                "one row per calibration dataset",
                timed=False,
                columns=(
                    ColumnSpec("TELESCOP", "10A", None, "mission"),
                    ColumnSpec("INSTRUME", "10A", None, "instrument"),
                    ColumnSpec("DETNAM", "20A", None, "sub-detector or NONE"),
                    ColumnSpec("FILTER", "10A", None, "filter or NONE"),
                    ColumnSpec("CAL_DEV", "20A", None, "device, ONLINE"),
                    ColumnSpec("CAL_DIR", "70A", None, "directory relative to $CALDB"),
                    ColumnSpec("CAL_FILE", "40A", None, "file name"),
                    ColumnSpec("CAL_CLAS", "3A", None, "BCF or CPF", allowed=("BCF", "CPF")),
                    ColumnSpec("CAL_DTYP", "4A", None, "DATA"),
                    ColumnSpec("CAL_CNAM", "20A", None, "code name"),
                    ColumnSpec("CAL_CBD", "630A70", None, "nine 70-character boundary strings"),
                    ColumnSpec("CAL_XNO", "I", None, "extension number", tlmin=-1, tlmax=999),
                    ColumnSpec("CAL_VSD", "10A", None, "validity start date YYYY-MM-DD"),
                    ColumnSpec("CAL_VST", "8A", None, "validity start time hh:mm:ss"),
                    ColumnSpec("REF_TIME", "D", "d", "validity start as MJD"),
                    ColumnSpec("CAL_QUAL", "I", None, "0 good, 5 bad/superseded", tlmin=0, tlmax=5),
                    ColumnSpec("CAL_DATE", "10A", None, "date indexed"),
                    ColumnSpec("CAL_DESC", "70A", None, "description"),
                ),
                keywords=(KeywordSpec("CIFVERSN", str, "CIF version", value="1.1"),),
            ),
        ),
    )
)

# --------------------------------------------------------------------------------------
# Monte-Carlo campaign results
# --------------------------------------------------------------------------------------

CAMPAIGN = register(
    ProductSpec(
        content="MXT_CAMPAIGN",
        title="Monte-Carlo campaign results",
        description=(
            "What a campaign simulated against what the pipeline measured: one row per "
            "simulated source (SOURCES) and one per run (RUNS), sorted by run index. The "
            "tables depend only on the campaign seed and the runs, not on the workers "
            "(run times are kept in the per-run records, not here)."
        ),
        filename="campaign_results.fits",
        timed=False,
        primary_keywords=(
            KeywordSpec("CASE", str, "simulated case"),
            KeywordSpec("NRUNS", int, "number of runs"),
            KeywordSpec("CSEED", int, "campaign seed"),
        ),
        hdus=(
            HDUSpec(
                "SOURCES",
                "one row per simulated source of every run",
                timed=False,
                columns=(
                    ColumnSpec("RUN", "J", None, "run index", tlmin=0, tlmax=2**31 - 1),
                    ColumnSpec("SRC", "J", None, "source index in the truth", tlmin=0, tlmax=2**31 - 1),
                    ColumnSpec("TRUE_RA", "D", "deg", "simulated RA"),
                    ColumnSpec("TRUE_DEC", "D", "deg", "simulated Dec", tlmin=-90, tlmax=90),
                    ColumnSpec("TRUE_CTS", "E", "count", "simulated counts detected (truth)", tlmin=0),
                    ColumnSpec("OFFAXIS", "E", "arcmin", "simulated off-axis angle", tlmin=0),
                    ColumnSpec("IN_FOV", "L", None, "inside the field of view"),
                    ColumnSpec("FOUND", "L", None, "matched to a detected source"),
                    ColumnSpec("OFFSET", "E", "arcsec", "distance found - true (NaN if not found)", finite=False),
                    ColumnSpec("ERR_R90", "E", "arcsec", "90% error radius (NaN if not found)", finite=False),
                    ColumnSpec("OFF_R90", "E", None, "OFFSET / ERR_R90", finite=False),
                    ColumnSpec("CTS_RATIO", "E", None, "measured / true counts", finite=False),
                    ColumnSpec("DET_ML", "E", None, "detection likelihood", finite=False),
                ),
            ),
            HDUSpec(
                "RUNS",
                "one row per run",
                timed=False,
                columns=(
                    ColumnSpec("RUN", "J", None, "run index", tlmin=0, tlmax=2**31 - 1),
                    ColumnSpec("SEED", "K", None, "run seed", tlmin=0, tlmax=2**32 - 1),
                    ColumnSpec("STATUS", "16A", None, "run status"),
                    ColumnSpec("N_TRUE", "J", None, "simulated sources in the field", tlmin=0, tlmax=2**31 - 1),
                    ColumnSpec("N_FOUND", "J", None, "detected sources", tlmin=0, tlmax=2**31 - 1),
                    ColumnSpec("N_FALSE", "J", None, "detections matching no simulated source", tlmin=0, tlmax=2**31 - 1),
                    ColumnSpec("LC_CHI2R", "E", None, "reduced chi-square of the light curve vs input", finite=False),
                    ColumnSpec("LINE_RES", "E", "eV", "calibration-line centroid residual", finite=False),
                ),
            ),
        ),
    )
)

# --------------------------------------------------------------------------------------
# Calibration files of the MXT CALDB (read by mxt_pipeline.caldb.products)
# --------------------------------------------------------------------------------------

#: HEASARC mandatory calibration keywords of every indexed HDU (CAL/GEN/92-008).
_CALDB_KEYWORDS = (
    KeywordSpec("CCLS0001", str, "calibration class (BCF or CPF)", allowed=("BCF", "CPF")),
    KeywordSpec("CDTP0001", str, "calibration data type", allowed=("DATA",)),
    KeywordSpec("CCNM0001", str, "CALDB code name"),
    KeywordSpec("CBD10001", str, "first boundary (or NONE)"),
    KeywordSpec("CVSD0001", str, "validity start date (UTC, YYYY-MM-DD)"),
    KeywordSpec("CVST0001", str, "validity start time (UTC, hh:mm:ss)"),
    KeywordSpec("CDES0001", str, "description of the dataset"),
)


def _caldb_product(content: str, title: str, description: str, filename: str, *hdus: HDUSpec) -> ProductSpec:
    return register(
        ProductSpec(content=content, title=title, description=description, hdus=hdus, filename=filename, timed=False)
    )


def _caldb_hdu(extname: str, description: str, columns: tuple[ColumnSpec, ...],
               keywords: tuple[KeywordSpec, ...] = (), indexed: bool = True) -> HDUSpec:  # fmt: skip
    return HDUSpec(
        extname, description, columns=columns, keywords=(_CALDB_KEYWORDS if indexed else ()) + keywords, timed=False
    )


_PIX = 2**15 - 1

CALDB_TELDEF = _caldb_product(
    "CALDB_TELDEF", "CALDB TELDEF: telescope definition",
    "RAW -> DET (shift to the optical axis, rotation, flips) and DET -> off-axis angles "
    "(flat focal plane at the focal length, plus the boresight alignment offsets). One row.",
    "mxt_teldef_<YYYYMMDD>_v<NN>.fits",
    _caldb_hdu("TELDEF", "telescope definition (one row)", (
        ColumnSpec("FOCALLEN", "D", "mm", "focal length"),
        ColumnSpec("PIXSIZE", "D", "mm", "pixel pitch"),
        ColumnSpec("NPIX_Y", "J", "pixel", "pixels along RAWY", tlmin=1, tlmax=_PIX),
        ColumnSpec("NPIX_Z", "J", "pixel", "pixels along RAWZ", tlmin=1, tlmax=_PIX),
        ColumnSpec("CEN_RAWY", "D", "pixel", "RAWY of the optical axis"),
        ColumnSpec("CEN_RAWZ", "D", "pixel", "RAWZ of the optical axis"),
        ColumnSpec("ROTATION", "D", "deg", "rotation RAW -> DET"),
        ColumnSpec("FLIP_Y", "L", None, "RAWY reversed before the rotation"),
        ColumnSpec("FLIP_Z", "L", None, "RAWZ reversed before the rotation"),
        ColumnSpec("ALIGN_Y", "D", "arcmin", "boresight offset added to the Y angle"),
        ColumnSpec("ALIGN_Z", "D", "arcmin", "boresight offset added to the Z angle"),
    )),
)  # fmt: skip

CALDB_PSF = _caldb_product(
    "CALDB_PSF", "CALDB PSF: lobster-eye point spread function",
    "Separable lobster-eye PSF tabulated on an (energy, off-axis angle) grid, one row per node: "
    "Gaussian spot, two cross arms (Cauchy along the arm, Gaussian across), Gaussian halo; "
    "widths in DET pixels, fractions summing to 1.",
    "mxt_psf_<YYYYMMDD>_v<NN>.fits",
    _caldb_hdu("PSF", "PSF parameters per (ENERGY, THETA) node", (
        ColumnSpec("ENERGY", "D", "keV", "photon energy of the node"),
        ColumnSpec("THETA", "D", "arcmin", "off-axis angle of the node", tlmin=0),
        ColumnSpec("SPOT_SIG", "D", "pixel", "Gaussian sigma of the central spot"),
        ColumnSpec("ARM_GAM", "D", "pixel", "Cauchy half-width of the arms along the arm"),
        ColumnSpec("ARM_SIG", "D", "pixel", "Gaussian sigma of the arms across the arm"),
        ColumnSpec("HALO_SIG", "D", "pixel", "Gaussian sigma of the diffuse halo"),
        ColumnSpec("F_SPOT", "D", None, "fraction in the spot (two reflections)"),
        ColumnSpec("F_ARMY", "D", None, "fraction in the arm along DETY"),
        ColumnSpec("F_ARMZ", "D", None, "fraction in the arm along DETZ"),
        ColumnSpec("F_HALO", "D", None, "fraction in the halo (no reflection)"),
    )),
)  # fmt: skip

CALDB_EFFAREA = _caldb_product(
    "CALDB_EFFAREA", "CALDB EFFAREA: on-axis effective area (ARF)",
    "OGIP ARF (CAL/GEN/92-002): on-axis effective area of optics, filter and detector per energy bin.",
    "mxt_effarea_<YYYYMMDD>_v<NN>.arf",
    _caldb_hdu("SPECRESP", "effective area per energy bin", (
        ColumnSpec("ENERG_LO", "E", "keV", "lower edge of the energy bin"),
        ColumnSpec("ENERG_HI", "E", "keV", "upper edge of the energy bin"),
        ColumnSpec("SPECRESP", "E", "cm**2", "effective area"),
    ), (
        KeywordSpec("HDUCLAS1", str, "dataset relates to spectral response", value="RESPONSE"),
        KeywordSpec("HDUCLAS2", str, "effective area", value="SPECRESP"),
        KeywordSpec("HDUVERS", str, "OGIP ARF format version", value="1.1.0"),
    )),
)  # fmt: skip

CALDB_VIGNET = _caldb_product(
    "CALDB_VIGNET", "CALDB VIGNET: vignetting",
    "Effective area off axis relative to on axis, one row per (energy, off-axis angle) node.",
    "mxt_vignet_<YYYYMMDD>_v<NN>.fits",
    _caldb_hdu("VIGNET", "vignetting per (ENERGY, THETA) node", (
        ColumnSpec("ENERGY", "D", "keV", "photon energy of the node"),
        ColumnSpec("THETA", "D", "arcmin", "off-axis angle of the node", tlmin=0),
        ColumnSpec("VIGNET", "D", None, "area relative to on axis", tlmin=0, tlmax=1),
    )),
)  # fmt: skip

#: Width of the fixed-length MATRIX column of the CALDB RMF (channels per row).
RMF_WIDTH = 96

CALDB_MATRIX = _caldb_product(
    "CALDB_MATRIX", "CALDB MATRIX: redistribution matrix (RMF)",
    "OGIP RMF (CAL/GEN/92-002): one group per energy bin, F_CHAN/N_CHAN give the channels of the "
    f"fixed-length MATRIX vector ({RMF_WIDTH} values, zero padded); EBOUNDS gives the PI channel energies.",
    "mxt_matrix_<YYYYMMDD>_v<NN>.rmf",
    _caldb_hdu("MATRIX", "redistribution per energy bin", (
        ColumnSpec("ENERG_LO", "E", "keV", "lower edge of the energy bin"),
        ColumnSpec("ENERG_HI", "E", "keV", "upper edge of the energy bin"),
        ColumnSpec("N_GRP", "I", None, "channel groups in the row", tlmin=0, tlmax=1),
        ColumnSpec("F_CHAN", "J", "chan", "first channel of the group", tlmin=0, tlmax=C.N_PI_CHANNELS - 1),
        ColumnSpec("N_CHAN", "J", "chan", "channels in the group", tlmin=0, tlmax=RMF_WIDTH),
        ColumnSpec("MATRIX", f"{RMF_WIDTH}E", None, "probability per channel of the group"),
    ), (
        KeywordSpec("HDUCLAS1", str, "dataset relates to spectral response", value="RESPONSE"),
        KeywordSpec("HDUCLAS2", str, "redistribution matrix", value="RSP_MATRIX"),
        KeywordSpec("HDUCLAS3", str, "redistribution only", value="REDIST"),
        KeywordSpec("HDUVERS", str, "OGIP RMF format version", value="1.3.0"),
        KeywordSpec("CHANTYPE", str, "channel type", value="PI"),
        KeywordSpec("DETCHANS", int, "number of channels"),
    )),
    _caldb_hdu("EBOUNDS", "energy range of each PI channel", (
        ColumnSpec("CHANNEL", "J", "chan", "PI channel", tlmin=0, tlmax=C.N_PI_CHANNELS - 1),
        ColumnSpec("E_MIN", "E", "keV", "lower energy of the channel"),
        ColumnSpec("E_MAX", "E", "keV", "upper energy of the channel"),
    ), (
        KeywordSpec("HDUCLAS1", str, "dataset relates to spectral response", value="RESPONSE"),
        KeywordSpec("HDUCLAS2", str, "channel energies", value="EBOUNDS"),
        KeywordSpec("HDUVERS", str, "OGIP EBOUNDS format version", value="1.2.0"),
        KeywordSpec("CHANTYPE", str, "channel type", value="PI"),
        KeywordSpec("DETCHANS", int, "number of channels"),
    )),
)  # fmt: skip

CALDB_CTI = _caldb_product(
    "CALDB_CTI", "CALDB CTI: charge transfer inefficiency",
    "Fractional charge loss per transfer vs energy (log-log interpolation); a hit at row RAWZ "
    "undergoes RAWZ + 1 transfers.",
    "mxt_cti_<YYYYMMDD>_v<NN>.fits",
    _caldb_hdu("CTI", "CTI per transfer vs energy", (
        ColumnSpec("ENERGY", "D", "keV", "charge (as energy) of the node", sorted=True),
        ColumnSpec("CTI", "D", None, "fractional loss per transfer"),
    )),
)  # fmt: skip

CALDB_GAINOFF = _caldb_product(
    "CALDB_GAINOFF", "CALDB GAINOFF: gain and offset per readout column",
    "Gain (eV per ADU) and offset (ADU) of the amplifier of each CCD column (RAWY): "
    "E = (PHA - OFFSET) * GAIN.",
    "mxt_gainoff_<YYYYMMDD>_v<NN>.fits",
    _caldb_hdu("GAINOFF", "one row per column", (
        ColumnSpec("RAWY", "I", "pixel", "column", tlmin=0, tlmax=C.N_PIX - 1, sorted=True),
        ColumnSpec("GAIN", "D", "eV/adu", "gain of the column"),
        ColumnSpec("OFFSET", "D", "adu", "offset of the column"),
    )),
)  # fmt: skip

CALDB_MULTIPLICITY = _caldb_product(
    "CALDB_MULTIPLICITY", "CALDB MULTIPLICITY: split-loss correction",
    "Factor k_m(E) restoring the energy of events of multiplicity m = 1..4 (charge lost below "
    "the split threshold), interpolated in log E.",
    "mxt_multiplicity_<YYYYMMDD>_v<NN>.fits",
    _caldb_hdu("MULTIPLICITY", "factors per energy node", (
        ColumnSpec("ENERGY", "D", "keV", "summed event energy of the node", sorted=True),
        ColumnSpec("FACTOR", "4D", None, "k_m for m = 1, 2, 3, 4"),
    )),
)  # fmt: skip

CALDB_BADPIX = _caldb_product(
    "CALDB_BADPIX", "CALDB BADPIX: bad pixels",
    "Pixels whose events are flagged (1 dead, 2 hot, 3 flickering).",
    "mxt_badpix_<YYYYMMDD>_v<NN>.fits",
    _caldb_hdu("BADPIX", "one row per bad pixel", (
        ColumnSpec("RAWY", "I", "pixel", "column", tlmin=0, tlmax=C.N_PIX - 1),
        ColumnSpec("RAWZ", "I", "pixel", "row", tlmin=0, tlmax=C.N_PIX - 1),
        ColumnSpec("TYPE", "I", None, "1 dead, 2 hot, 3 flickering", tlmin=1, tlmax=3),
    )),
)  # fmt: skip

CALDB_PATTERN = _caldb_product(
    "CALDB_PATTERN", "CALDB PATTERN: event-pattern thresholds and charge cloud",
    "Primary and split thresholds (keV), read noise (eV), charge-cloud width vs energy, and the "
    "EPIC-pn pattern codes with their use (imaging 0-12, spectroscopy 0-4).",
    "mxt_pattern_<YYYYMMDD>_v<NN>.fits",
    _caldb_hdu("PATTERN", "charge-cloud sigma vs energy", (
        ColumnSpec("ENERGY", "D", "keV", "photon energy of the node", sorted=True),
        ColumnSpec("CLOUDSIG", "D", "um", "Gaussian sigma of the charge cloud"),
    ), (
        KeywordSpec("PRIM_THR", float, "[keV] primary threshold"),
        KeywordSpec("SPLT_THR", float, "[keV] split threshold"),
        KeywordSpec("RDNOISE", float, "[eV] read noise (rms)"),
    )),
    _caldb_hdu("GRADES", "pattern codes", (
        ColumnSpec("PATTERN", "I", None, "pattern code", tlmin=0, tlmax=PATTERN_INVALID),
        ColumnSpec("NPIX", "I", "pixel", "pixels of the pattern (0: any other shape)", tlmin=0, tlmax=4),
        ColumnSpec("IMAGING", "L", None, "valid for imaging"),
        ColumnSpec("SPECTRAL", "L", None, "valid for spectroscopy"),
    ), indexed=False),
)  # fmt: skip

CALDB_SYSERR = _caldb_product(
    "CALDB_SYSERR", "CALDB SYSERR: localisation systematic",
    "Systematic error radius added in quadrature to the statistical error radius.",
    "mxt_syserr_<YYYYMMDD>_v<NN>.fits",
    _caldb_hdu("SYSERR", "one row", (
        ColumnSpec("RADIUS", "D", "arcsec", "systematic radius"),
        ColumnSpec("CONFLEV", "D", None, "confidence level of the radius"),
    )),
    HDUSpec("DCLEVELS", "profile-likelihood levels of the 68.3% and 90% position contours vs DET_ML "
            "(Monte-Carlo calibration near the detection threshold; optional)", columns=(
        ColumnSpec("DET_ML", "D", None, "detection likelihood of the node", sorted=True),
        ColumnSpec("DC68", "D", None, "delta-C level of the 68.3% contour"),
        ColumnSpec("DC90", "D", None, "delta-C level of the 90% contour"),
    ), keywords=(
        KeywordSpec("CALMETH", str, "calibration method", required=False),
        KeywordSpec("MLTHRESH", float, "DET_ML threshold of the calibration runs", required=False),
        KeywordSpec("BKGPIX", float, "[count/pixel] background per band of the runs", required=False),
        KeywordSpec("NSIMCASE", str, "source counts of the simulated cases", required=False),
        KeywordSpec("SIMSEED", int, "root seed of the simulations", required=False),
        KeywordSpec("AMP68", float, "amplitude A of the 68.3% level", required=False),
        KeywordSpec("SCALE68", float, "DET_ML scale S of the 68.3% level", required=False),
        KeywordSpec("AMP90", float, "amplitude A of the 90% level", required=False),
        KeywordSpec("SCALE90", float, "DET_ML scale S of the 90% level", required=False),
    ), required=False, timed=False),
)  # fmt: skip

#: CALDB file formats by code name (the product type of each calibration file).
CALDB_FORMATS = {
    "TELDEF": CALDB_TELDEF, "PSF": CALDB_PSF, "EFFAREA": CALDB_EFFAREA, "VIGNET": CALDB_VIGNET,
    "MATRIX": CALDB_MATRIX, "CTI": CALDB_CTI, "GAINOFF": CALDB_GAINOFF, "MULTIPLICITY": CALDB_MULTIPLICITY,
    "BADPIX": CALDB_BADPIX, "PATTERN": CALDB_PATTERN, "SYSERR": CALDB_SYSERR,
}  # fmt: skip
__all__ += ["CALDB_FORMATS"]
