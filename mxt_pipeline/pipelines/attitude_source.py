"""Where a run's attitude comes from: the dataset's ATT file, else the attitude service.

A dataset whose manifest lists no ATT file (``files.att`` null), or runtime data giving
L1 files without ``inputs.att``, is run with the attitude of the service named by
``services.attitude_url`` of ``runtime_data.json``, ``mxt run --attitude-url`` or
``$MXT_ATTITUDE_URL``.  :func:`fetch_run_attitude` asks the service for the
observation's span (the manifest's TSTART/TSTOP, else the passes' coverage) once, in the
run's ``inputs`` phase: the file received is an input of the run like the ATT file it
stands for (its checksum enters the run key; its record names the service, the range
and the archive files), and it feeds the ``attitude`` port of every brick.

Nothing is invented: a range the service does not cover at all, an unusable archive
file or a bad quaternion fails the run with an error naming the service and the range
(BAD_INPUT; SERVICE_UNAVAILABLE when it cannot be reached; AUTH_FAILED for the token).
Parts of the span the answer leaves without attitude (sampling gaps longer than the
calibration's ``max_attitude_gap_s``, or the answer stopping short of the span) are
not filled: the screening makes them ATTITUDE gaps in the GAPS product (as it does for
the gaps of an ATT file), and the attitude's input record in the run report and the
manifest names the service, the range, the archive files and these gaps
(``attitude_gaps``); the run log warns of them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.products import read_raw_hits
from mxt_pipeline.pipelines.ports import FileRecord, file_record
from mxt_pipeline.services.attitude import ATTITUDE_URL_ENV, AttitudeClient, FetchedAttitude

__all__ = ["needs_service_attitude", "observation_span", "fetch_run_attitude", "attitude_record", "NO_ATTITUDE_HELP"]

log = logging.getLogger(__name__)

#: What to do when a run has no attitude source.
NO_ATTITUDE_HELP = (f"give the dataset an ATT file (files.att), or an attitude service: services.attitude_url in "
                    f"runtime_data.json, mxt run --attitude-url URL, or ${ATTITUDE_URL_ENV}")  # fmt: skip

#: Default of the calibrate brick's ``max_attitude_gap_s`` (checked against the brick's
#: declaration by the tests).
DEFAULT_MAX_GAP_S = 60.0


def needs_service_attitude(inputs: Any) -> bool:
    """Whether the inputs hold L1 passes but no attitude file (telemetry carries its own)."""
    return (getattr(inputs, "att", "") is None and not getattr(inputs, "from_telemetry", False)
            and bool(getattr(inputs, "l1", ())))  # fmt: skip


def observation_span(inputs: Any) -> tuple[float, float]:
    """The span whose attitude a run needs: the manifest's TSTART/TSTOP, else the union of
    the passes' good-time coverage (read from the L1 files)."""
    m = inputs.manifest
    if m.get("tstart") is not None and m.get("tstop") is not None:
        return float(m["tstart"]), float(m["tstop"])
    starts, stops = [], []
    for p in inputs.l1:
        gti = read_raw_hits(p).gti
        if len(gti):
            starts.append(gti.tstart)
            stops.append(gti.tstop)
    if not starts:
        raise MXTInputError("no time span to ask the attitude service for: the manifest has no tstart/tstop and "
                            "the L1 passes no good time", keyword="tstart")  # fmt: skip
    tstart = float(m["tstart"]) if m.get("tstart") is not None else min(starts)
    tstop = float(m["tstop"]) if m.get("tstop") is not None else max(stops)
    return tstart, tstop


def fetch_run_attitude(request: Any, parameters: dict[str, dict[str, Any]], cache_dir: Path) -> FetchedAttitude:
    """Ask the request's attitude service for the observation's attitude.

    Parameters
    ----------
    request : RunRequest
        With ``attitude_url`` set.
    parameters : dict
        The run's effective parameters (``calibrate.max_attitude_gap_s`` tells which
        sampling gaps are reported).
    cache_dir : Path
        Folder receiving the answer.

    Raises
    ------
    MXTInputError
        No attitude URL; bad answer (bad quaternion: service, range and row named).
    MXTServiceError, MXTAuthError, MXTServiceUnavailable
        As :meth:`AttitudeClient.fetch`.
    """
    if not request.attitude_url:
        raise MXTInputError(f"the inputs hold no attitude file: {NO_ATTITUDE_HELP}", keyword="services.attitude_url")
    tstart, tstop = observation_span(request.inputs)
    max_gap = float(parameters.get("calibrate", {}).get("max_attitude_gap_s", DEFAULT_MAX_GAP_S))
    with AttitudeClient(request.attitude_url, token=request.token.reveal() if request.token is not None else None,
                        max_tries=request.max_tries, cache_dir=cache_dir) as client:  # fmt: skip
        got = client.fetch(tstart, tstop, max_gap_s=max_gap)
    (log.warning if got.gaps else log.info)("%s", got.describe())
    return got


def attitude_record(got: FetchedAttitude, known: dict[str, tuple[str, int]] | None = None) -> FileRecord:
    """The input record of attitude received from the service (port ``att``, like an ATT file)."""
    rec = file_record("att", got.path, role="input", key="service", known=known)
    rec.extra.update({"service": got.url, "tstart": got.tstart, "tstop": got.tstop, "sources": list(got.sources),
                      "attitude_gaps": [[a, b] for a, b in got.gaps]})  # fmt: skip
    return rec
