"""Source detection of one observation: L2 events in, the MXT-SOP-SKY source list out.

:func:`detect_sources` is the pure task (events and calibration in memory, an
astropy Table out); the ``detect`` brick (``mxt detect``, ``mxt run``, the campaigns
and the acceptance study) runs it with the validated configuration
(:meth:`DetectionParameters.for_calibration`).  The steps:

1. band images and the relative exposure in DET coordinates
   (:mod:`~mxt_pipeline.detect.images`);
2. one PSF per band, averaged over the band with the weights of an absorbed power law
   folded through the effective area (:mod:`~mxt_pipeline.detect.bandpsf`);
3. stage 1, histogram fit of the projections (:mod:`~mxt_pipeline.detect.stage1`);
4. stage 2, multi-band multi-source maximum likelihood with the add/drop criteria and
   DET_ML (:mod:`~mxt_pipeline.detect.mlfit`);
5. profile-likelihood errors of every position and errors of the counts
   (:mod:`~mxt_pipeline.detect.positions`), the CALDB systematic added in quadrature,
   the alert quality factor (:mod:`~mxt_pipeline.detect.radii`);
6. conversion to RA/Dec: with an attitude history through the reference attitude and
   the TELDEF (``coordinates.det_to_radec``); without one, through the relation between
   DET and sky coordinates that the calibration chain wrote in the event list (a
   least-squares affine fit of the events' sky X/Y against DETY/DETZ, exact for a
   stable pointing), then ``coordinates.sky_to_radec`` about RA_NOM/DEC_NOM;
7. the source table, sorted by decreasing DET_ML.

Count rates.  COUNTS are the counts the fit attributes to each source per band (an
unobstructed detector over the whole PSF); RATE divides them by the live time and by
the vignetting of the source direction averaged over the band, and sums the bands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from astropy.table import Table

from mxt_pipeline import constants as C
from mxt_pipeline import geometry as coords
from mxt_pipeline.datamodel import Attitude, EventList
from mxt_pipeline.detect.bandpsf import DetectionCalibration
from mxt_pipeline.detect.bands import EnergyBand, as_bands
from mxt_pipeline.detect.blas import one_blas_thread
from mxt_pipeline.detect.confusion import PairTestParameters, split_pairs
from mxt_pipeline.detect.images import (
    SKY_PHOTON_INDEX,
    DetectionImages,
    background_templates,
    build_images,
    select_events,
)
from mxt_pipeline.detect.levels import WILKS, ErrorLevels
from mxt_pipeline.detect.likelihood import BandData
from mxt_pipeline.detect.mlfit import DEFAULT_DET_ML_THRESHOLD, MLParameters, MLState, run_ml
from mxt_pipeline.detect.outfield import outside_field, relocate_edge_sources
from mxt_pipeline.detect.positions import count_errors, position_errors
from mxt_pipeline.detect.problem import BandPSFLike, DetectionProblem
from mxt_pipeline.detect.radii import ContourResult, add_systematic, quality_factor, systematic_68
from mxt_pipeline.detect.srclist import FLAG_OUT_OF_FOV, FLAG_PAIR, position_flags
from mxt_pipeline.detect.stage1 import run_stage1
from mxt_pipeline.detect.systematic import DEFAULT_PSF_SYSTEMATIC
from mxt_pipeline.errors import MXTInputError

__all__ = [
    "DEFAULT_DET_ML_THRESHOLD",
    "DetectionParameters",
    "DetectionResult",
    "detect_in_problem",
    "affine_sky_mapping",
    "source_table",
    "pixel_scale_arcsec",
    "detect_sources",
]

log = logging.getLogger(__name__)

#: Background models of :class:`DetectionParameters`.
BACKGROUND_MODELS = ("sky+particle", "flat")



@dataclass(frozen=True)
class DetectionParameters:
    """Settings of the detection.

    Attributes
    ----------
    det_ml_threshold : float or None
        Least DET_ML of a listed source.  None: the validated threshold, i.e. the
        DET_ML at which the CALDB's error levels were calibrated (keyword MLTHRESH of
        the SYSERR file's DCLEVELS table, :attr:`DetectionCalibration.ml_threshold`),
        else :data:`DEFAULT_DET_ML_THRESHOLD`.
    max_sources : int
        Most sources fitted together.
    stage1_max_sources : int
        Most sources found by stage 1.
    stage1_min_gain : float
        Least likelihood gain (delta C) of a stage-1 source.
    margin : float
        Pixels beyond the chip where a source position may lie (out-of-field sources
        seen through their cross arms).
    n_rays : int
        Rays of the profile-likelihood contour search.
    photon_index : float
        Photon index of the power law weighting energies within a band (PSF and
        vignetting averages).
    subsample : int
        Sub-samples per pixel and axis of the exposure map.
    max_additions : int
        Most add-source rounds of the ML stage.
    psf_systematic : float
        Fractional systematic error of the PSF model, used by the add and drop
        decisions of both stages (:mod:`~mxt_pipeline.detect.systematic`).
    max_fits : int
        Most multi-source fits of the ML stage (iteration cap, not a time limit).
    error_levels : ErrorLevels, optional
        dC levels of the 68% and 90% contours vs DET_ML
        (:mod:`~mxt_pipeline.detect.levels`); None: those of the CALDB SYSERR file in
        :func:`detect_sources`, Wilks' levels in :func:`detect_in_problem`.
    background_model : {"sky+particle", "flat"}
        Background of :func:`detect_sources`: the vignetted sky and the flat particle
        components (:func:`~mxt_pipeline.detect.images.background_templates`), or one
        flat component (the model before issue 21: no radial pull correction, but no
        competition of the sky component with a faint source near the axis).
    pair_test : PairTestParameters
        The test for a companion of each bright source after the ML stage
        (:mod:`~mxt_pipeline.detect.confusion`).
    """

    det_ml_threshold: float | None = None
    max_sources: int = 10
    stage1_max_sources: int = 8
    stage1_min_gain: float = 15.0
    margin: float = 128.0
    n_rays: int = 8
    photon_index: float = 2.0
    subsample: int = 4
    max_additions: int = 4
    psf_systematic: float = DEFAULT_PSF_SYSTEMATIC
    max_fits: int = 80
    error_levels: ErrorLevels | None = None
    background_model: str = "sky+particle"
    pair_test: PairTestParameters = field(default_factory=PairTestParameters)

    @property
    def threshold(self) -> float:
        """The DET_ML threshold in force (the default one when not resolved)."""
        return DEFAULT_DET_ML_THRESHOLD if self.det_ml_threshold is None else float(self.det_ml_threshold)

    def for_calibration(self, cal: DetectionCalibration) -> DetectionParameters:
        """These parameters with what the calibration fixes filled in.

        The threshold and the dC error levels not set here come from the CALDB: the
        levels of the SYSERR file's DCLEVELS table and the DET_ML threshold they were
        calibrated at.  This is the one place where the validated detector
        configuration is assembled; the detect brick, the acceptance study and the
        campaigns all go through it.
        """
        threshold = self.det_ml_threshold
        if threshold is None:
            threshold = cal.ml_threshold if cal.ml_threshold is not None else DEFAULT_DET_ML_THRESHOLD
        levels = self.error_levels if self.error_levels is not None else cal.error_levels
        return replace(self, det_ml_threshold=float(threshold), error_levels=levels)

    def ml_parameters(self) -> MLParameters:
        return MLParameters(
            det_ml_threshold=self.threshold,
            max_sources=self.max_sources,
            max_additions=self.max_additions,
            psf_systematic=self.psf_systematic,
            max_fits=self.max_fits,
        )


@dataclass
class DetectionResult:
    """Sources of one detection, in detector coordinates (pixels)."""

    state: MLState
    contours: list[ContourResult]
    counts_err: np.ndarray  # (S, B)
    stage1_sources: int
    problem: DetectionProblem = field(repr=False)
    #: (S,) True for the companions added by the pair test (:mod:`~mxt_pipeline.detect.confusion`).
    companion: np.ndarray | None = None
    #: (S,) confusion term added to the radii (pixels; :func:`~mxt_pipeline.detect.confusion.split_pairs`).
    confusion_shift: np.ndarray | None = None

    @property
    def n_sources(self) -> int:
        return self.state.n_sources


@one_blas_thread
def detect_in_problem(problem: DetectionProblem, params: DetectionParameters | None = None) -> DetectionResult:
    """Both stages and the errors on band images already set up as a problem.

    The pure core of the detection, used by :func:`detect_sources`, the validation
    Monte-Carlo and the benchmark.
    """
    params = params or DetectionParameters()
    s1 = run_stage1(problem, max_sources=params.stage1_max_sources, min_gain=params.stage1_min_gain,
                    psf_systematic=params.psf_systematic)
    state = run_ml(problem, s1.y, s1.z, s1.counts, s1.background, params.ml_parameters())
    state = relocate_edge_sources(problem, state, params.ml_parameters())
    state, companion, shift = split_pairs(problem, state, params.ml_parameters(), params.pair_test)
    levels = params.error_levels or WILKS
    contours = [position_errors(problem, state, i, params.ml_parameters(), n_rays=params.n_rays,
                                levels=levels.at(state.det_ml[i])) for i in range(state.n_sources)]
    cerr = count_errors(state) if state.n_sources else np.zeros((0, problem.n_bands))
    if np.any(shift > 0):
        # The confusion term of the pair test widens the statistical radii.
        contours = [replace(c, radius68=c.radius68 + d, radius90=c.radius90 + d) if d > 0 else c
                    for c, d in zip(contours, shift)]  # fmt: skip
    return DetectionResult(state, contours, cerr, s1.n_sources, problem, companion, shift)


def affine_sky_mapping(events: EventList) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """DET -> sky X/Y map fitted to the events (least squares, affine).

    The calibration chain wrote each event's DETY/DETZ and its sky X/Y; for a stable
    pointing the relation is affine to far below a pixel over the chip (the gnomonic
    projection of a 1-degree field).  Events outside the imaging selection are used too:
    the geometry does not depend on the screening.

    Raises
    ------
    MXTInputError
        With fewer than 3 events or a degenerate geometry.
    """
    dy = np.asarray(events["DETY"], float)
    dz = np.asarray(events["DETZ"], float)
    x = np.asarray(events["X"], float)
    y = np.asarray(events["Y"], float)
    ok = np.isfinite(dy) & np.isfinite(dz) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        raise MXTInputError("too few events to relate DET and sky coordinates", hdu="EVENTS", column="X")
    design = np.stack([np.ones(ok.sum()), dy[ok], dz[ok]], axis=1)
    if np.linalg.matrix_rank(design) < 3:
        raise MXTInputError("events do not span the detector: cannot relate DET and sky", hdu="EVENTS")
    coef_x, *_ = np.linalg.lstsq(design, x[ok], rcond=None)
    coef_y, *_ = np.linalg.lstsq(design, y[ok], rcond=None)
    resid = np.hypot(design @ coef_x - x[ok], design @ coef_y - y[ok])
    if np.median(resid) > 0.5:
        log.warning("DET -> sky relation of the events is not affine (median residual %.2f px): "
                    "give the attitude for exact positions", float(np.median(resid)))

    def mapping(dety: np.ndarray, detz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.stack([np.ones(np.size(dety)), np.ravel(dety), np.ravel(detz)], axis=1)
        return d @ coef_x, d @ coef_y

    return mapping


def pixel_scale_arcsec(teldef, dety: np.ndarray, detz: np.ndarray) -> np.ndarray:
    """Sky size (arcsec) of one DET pixel at each position: the TELDEF's local scale."""
    """Local angular size (arcsec) of a DET pixel at each position (mean of the two axes)."""
    if teldef is None:
        return np.full(np.size(dety), C.PIXEL_SCALE_ARCSEC)
    h = 0.5
    ay1, az1 = teldef.det_to_angles(dety + h, detz)
    ay0, az0 = teldef.det_to_angles(dety - h, detz)
    by1, bz1 = teldef.det_to_angles(dety, detz + h)
    by0, bz0 = teldef.det_to_angles(dety, detz - h)
    sy = np.hypot(np.asarray(ay1) - ay0, np.asarray(az1) - az0) / (2 * h)
    sz = np.hypot(np.asarray(by1) - by0, np.asarray(bz1) - bz0) / (2 * h)
    return 60.0 * np.sqrt(sy * sz)


def background_components(background: np.ndarray, n_bands: int) -> dict[str, list[float]]:
    """BKG_SKY and BKG_PART per band from fitted amplitudes (B, K).

    With two components (K = 2, :func:`~mxt_pipeline.detect.images.background_templates`)
    they are the sky amplitude (per pixel of full exposure on the optical axis) and the
    flat particle one; with a single flat component (no vignetting in the CALDB) the
    whole background is flat and reported as BKG_PART, BKG_SKY 0.
    """
    bkg = np.asarray(background, float).reshape(n_bands, -1)
    if bkg.shape[1] == 2:
        sky, part = bkg[:, 0], bkg[:, 1]
    else:
        sky, part = np.zeros(n_bands), bkg.sum(axis=1)
    return {"BKG_SKY": [float(v) for v in sky], "BKG_PART": [float(v) for v in part]}


def source_table(
    result: DetectionResult,
    bands: Sequence[EnergyBand],
    *,
    livetime: float,
    to_radec: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    ra_nom: float,
    dec_nom: float,
    teldef=None,
    vignetting: Callable[[np.ndarray], np.ndarray] | None = None,
    syserr_arcsec: float = 25.0,
    threshold: float = DEFAULT_DET_ML_THRESHOLD,
    levels_origin: str = WILKS.origin,
) -> Table:
    """The source table (SRCLIST columns, per-band rates, DETY, DETZ, statistical radii).

    COUNTS and COUNTS_ERR are (S, B); RATE_BAND and RATE_BAND_ERR (S, B) are the
    vignetting-corrected rates per band, RATE and RATE_ERR their sums over the bands.

    Parameters
    ----------
    result : DetectionResult
    bands : sequence of EnergyBand
    livetime : float
        Live time (s) of the images.
    to_radec : callable
        ``to_radec(dety, detz) -> (ra, dec)`` in degrees.
    ra_nom, dec_nom : float
        Nominal pointing (sky X/Y tangent plane).
    teldef : Teldef-like, optional
        For RAWY/RAWZ, OFFAXIS and the pixel scale (default: nominal scale, DET centred).
    vignetting : callable, optional
        ``vignetting(theta_arcmin) -> (S, B)`` band-averaged vignetting of the source
        directions (default 1).
    syserr_arcsec : float
        90% systematic radius added in quadrature.
    threshold : float
        DET_ML threshold of the list (kept in the table meta).
    levels_origin : str
        Origin of the dC levels of the radii (kept in the table meta).
    """
    st = result.state
    n, n_b = st.n_sources, len(bands)
    order = np.argsort(-st.det_ml, kind="stable") if n else np.zeros(0, int)
    dety, detz = st.y[order], st.z[order]
    counts = st.counts[order]
    cerr = result.counts_err[order]
    cont = [result.contours[i] for i in order]
    scale = pixel_scale_arcsec(teldef, dety, detz) if n else np.zeros(0)
    r68 = np.array([c.radius68 for c in cont]) * scale
    r90 = np.array([c.radius90 for c in cont]) * scale
    if teldef is not None and n:
        rawy, rawz = (np.asarray(v, float) for v in teldef.det_to_raw(dety, detz))
        ay, az = teldef.det_to_angles(dety, detz)
        offaxis = np.hypot(ay, az)
    else:
        rawy, rawz = dety + 0.5 * (C.N_PIX - 1), detz + 0.5 * (C.N_PIX - 1)
        offaxis = np.hypot(dety, detz) * C.PIXEL_SCALE_ARCSEC / 60.0
    if n:
        ra, dec = (np.asarray(v, float) for v in to_radec(dety, detz))
        x, y = coords.radec_to_sky(ra, dec, ra_nom, dec_nom)
        vig = np.ones((n, n_b)) if vignetting is None else np.asarray(vignetting(np.atleast_1d(offaxis)), float).reshape(n, n_b)
    else:
        ra = dec = x = y = np.zeros(0)
        vig = np.ones((0, n_b))
    vig = np.maximum(vig, 1e-3)  # far outside the field the vignetting tends to 0
    rate_b = counts / (livetime * vig)
    rate_err_b = cerr / (livetime * vig)
    err68 = add_systematic(r68, systematic_68(syserr_arcsec))
    err90 = add_systematic(r90, syserr_arcsec)
    problem = getattr(result, "problem", None)
    flags = position_flags(
        rawy, rawz, dety, detz,
        y_edges=None if problem is None else problem.y_edges,
        z_edges=None if problem is None else problem.z_edges,
        exposure=None if problem is None or not problem.bands else problem.bands[0].exposure,
    ) if n else np.zeros(0, np.int16)  # fmt: skip
    if n and problem is not None:
        # Out-of-field sources (spot off the field, seen through their arms) and the
        # companions of the pair test.
        flags = flags | np.where(outside_field(problem, dety, detz), FLAG_OUT_OF_FOV, 0).astype(np.int16)
        companion = getattr(result, "companion", None)
        if companion is not None:
            flags = flags | np.where(np.asarray(companion, bool)[order], FLAG_PAIR, 0).astype(np.int16)
    # A position off the sensitive area is never an alert-quality in-field position.
    qf = np.where((flags & ~FLAG_PAIR) == 0, quality_factor(err90), 0).astype(np.int16)
    table = Table(
        {
            "SRC_ID": np.arange(1, n + 1, dtype=np.int32),
            "RA": ra,
            "DEC": dec,
            "ERR_R68": err68.astype(np.float32),
            "ERR_R90": err90.astype(np.float32),
            "RAWY": np.asarray(rawy, np.float32),
            "RAWZ": np.asarray(rawz, np.float32),
            "X": np.asarray(x, np.float32),
            "Y": np.asarray(y, np.float32),
            "OFFAXIS": np.asarray(offaxis, np.float32),
            "COUNTS": counts.astype(np.float32).reshape(n, n_b),
            "COUNTS_ERR": cerr.astype(np.float32).reshape(n, n_b),
            "RATE": rate_b.sum(axis=1).astype(np.float32),
            "RATE_ERR": np.sqrt((rate_err_b**2).sum(axis=1)).astype(np.float32),
            "RATE_BAND": rate_b.astype(np.float32).reshape(n, n_b),
            "RATE_BAND_ERR": rate_err_b.astype(np.float32).reshape(n, n_b),
            "DET_ML": st.det_ml[order].astype(np.float32),
            "QF": qf,
            "FLAGS": flags,
            # Not in the product: detector position and statistical radii.
            "DETY": dety,
            "DETZ": detz,
            "R68_STAT": r68,
            "R90_STAT": r90,
            "CONTOUR_CLOSED": np.array([c.closed for c in cont], bool),
        }
    )
    table.meta.update(
        {"BANDS": [(b.e_min, b.e_max) for b in bands], "SYSERR": float(syserr_arcsec), "MLTHRESH": float(threshold),
         "ERRLEVEL": str(levels_origin)}
    )
    table.meta.update(background_components(st.background, n_b))
    return table


def _problem_from_images(images: DetectionImages, psfs: Sequence[BandPSFLike], teldef, margin: float,
                         sky_vignetting: Callable[[np.ndarray], np.ndarray] | None = None) -> DetectionProblem:
    def theta_of(y, z):
        if teldef is None:
            return np.hypot(y, z) * C.PIXEL_SCALE_ARCSEC / 60.0
        ay, az = teldef.det_to_angles(y, z)
        return np.hypot(ay, az)

    templates = background_templates(images.exposure, images.y_edges, images.z_edges, theta_of, sky_vignetting,
                                     len(images.counts))
    bands = [BandData(c, images.exposure, t) for c, t in zip(images.counts, templates)]
    return DetectionProblem(images.y_edges, images.z_edges, bands, list(psfs), theta_of=theta_of, margin=margin)


@one_blas_thread
def detect_sources(
    events: EventList,
    calset,
    bands: Sequence[EnergyBand] | str | None = None,
    params: DetectionParameters | None = None,
    *,
    attitude: Attitude | None = None,
) -> Table:
    """Detect the sources of an L2 event list.

    Parameters
    ----------
    events : EventList
        Calibrated events with GTIs; ``meta`` holds RA_NOM and DEC_NOM.
    calset : CalibrationSet or DetectionCalibration
        The CALDB models (PSF, TELDEF, BADPIX, EFFAREA, VIGNET, SYSERR).
    bands : sequence of EnergyBand, or ``'0.2-2,2-10'``, optional
        Detection bands (default 0.2-2 and 2-10 keV).
    params : DetectionParameters, optional
    attitude : Attitude, optional
        Attitude history: images re-projected to the reference attitude and positions
        converted through it; without it the event list's own DET -> sky relation is
        used.

    Returns
    -------
    astropy.table.Table
        The source list (SRCLIST columns, plus DETY, DETZ, R68_STAT, R90_STAT and
        CONTOUR_CLOSED), sorted by decreasing DET_ML; zero rows for an empty field.
    """
    params = params or DetectionParameters()
    bands = as_bands(bands)
    cal = calset if isinstance(calset, DetectionCalibration) else DetectionCalibration.from_calset(calset)
    params = params.for_calibration(cal)
    for key in ("RA_NOM", "DEC_NOM"):
        if key not in events.meta:
            raise MXTInputError(f"the event list lacks {key}", keyword=key)
    images = build_images(
        events, bands, cal.teldef, bad_mask=cal.bad_mask, attitude=attitude, subsample=params.subsample
    )
    psfs = cal.band_psfs(bands, params.photon_index)
    if params.background_model not in BACKGROUND_MODELS:
        raise MXTInputError(f"unknown background model {params.background_model!r}; known: {list(BACKGROUND_MODELS)}")
    sky = cal.band_vignetting(bands, SKY_PHOTON_INDEX) if params.background_model == "sky+particle" else None
    problem = _problem_from_images(images, psfs, cal.teldef, params.margin, sky)
    result = detect_in_problem(problem, params)
    if attitude is not None:
        ref = attitude.rotation(np.array([images.t_ref]))

        def to_radec(dy, dz):
            return coords.det_to_radec(dy, dz, images.t_ref, ref, cal.teldef)

    elif result.n_sources:
        sky = affine_sky_mapping(events.select(select_events(events)) if np.sum(select_events(events)) >= 3 else events)

        def to_radec(dy, dz):
            x, y = sky(dy, dz)
            return coords.sky_to_radec(x, y, float(events.meta["RA_NOM"]), float(events.meta["DEC_NOM"]))

    else:

        def to_radec(dy, dz):
            return np.zeros(0), np.zeros(0)

    return source_table(
        result,
        bands,
        livetime=images.livetime,
        to_radec=to_radec,
        ra_nom=float(events.meta["RA_NOM"]),
        dec_nom=float(events.meta["DEC_NOM"]),
        teldef=cal.teldef,
        vignetting=cal.band_vignetting(bands, params.photon_index),
        syserr_arcsec=cal.syserr_arcsec,
        threshold=params.threshold,
        levels_origin=(params.error_levels or WILKS).origin,
    )
