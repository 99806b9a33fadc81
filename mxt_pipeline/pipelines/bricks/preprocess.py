"""Brick ``preprocess``: telemetry packets of the ground-station passes -> L1 raw passes and ATT.

Input ``telemetry``: the packet files of the passes (one per pass, any order,
``docs/formats.md``, "Telemetry packets").  The core
(:func:`mxt_pipeline.telemetry.stream.decode_deliveries`, pure) checks every CRC,
removes the duplicates across passes, orders each stream by time, counts every defect
and removes the lost time from the pass GTIs (a TELEMETRY gap for calibration).
Outputs: the L1 raw files in the format of the L1 path (byte-identical to them when
the downlink had no defect), the attitude file and the defect report.  Run alone by
``mxt preprocess``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTFormatError
from mxt_pipeline.io.products import read_attitude, read_raw_hits, write_attitude, write_raw_hits
from mxt_pipeline.pipelines.brick import Brick, CoreResult
from mxt_pipeline.pipelines.ports import Codec, Port, json_codec

__all__ = ["PREPROCESS", "PacketDelivery", "preprocess_core", "TELEMETRY_PASSES"]


class PacketDelivery(list):
    """The packets of one pass file in arrival order, with ``meta`` (OBS_ID when readable)."""

    def __init__(self, packets, meta: dict[str, Any]):
        super().__init__(packets)
        self.meta = meta


def _read_delivery(path: Path) -> PacketDelivery:
    # lazy: spacepackets/fastcrc only when telemetry is decoded, never for an L1 run (#18)
    from mxt_pipeline.io.telemetry_stream import read_packet_file
    from mxt_pipeline.telemetry.packets import APID_HOUSEKEEPING, parse_housekeeping, parse_packet

    packets = read_packet_file(path)
    meta: dict[str, Any] = {"FILE": str(path)}
    for raw in packets:  # the first intact housekeeping packet names the observation
        try:
            p = parse_packet(raw)
            if p.apid == APID_HOUSEKEEPING:
                meta["OBS_ID"] = parse_housekeeping(p.data).obs_id
                break
        except MXTFormatError:
            continue
    return PacketDelivery(packets, meta)


def _write_raw(path: Path, hits, naming) -> None:
    write_raw_hits(path, hits)


def _read_raw(path: Path):
    return read_raw_hits(path)


def _write_att(path: Path, att, naming) -> None:
    write_attitude(path, att)


def _read_att(path: Path):
    return read_attitude(path)


#: Packet files of the passes (read only), keyed by file stem.
TELEMETRY_PASSES = Codec("MXT_TM", read=_read_delivery, many=True)
_L1_OUT = Codec("MXT_L1_RAW", "mxt_l1_raw_{obs_id}_p{key}.fits", _write_raw, _read_raw, many=True, fits=True)
_ATT_OUT = Codec("MXT_ATT", "mxt_att_{obs_id}.fits", _write_att, _read_att, fits=True)


def preprocess_core(inputs: dict[str, Any], params, cal) -> CoreResult:
    """Decode the deliveries (pure: the packets are already in memory)."""
    # lazy: spacepackets/fastcrc only when telemetry is decoded, never for an L1 run (#18)
    from mxt_pipeline.telemetry.stream import decode_deliveries

    deliveries = [inputs["telemetry"][k] for k in sorted(inputs["telemetry"])]
    decoded = decode_deliveries(deliveries)
    rep = decoded.report
    passes = {f"{int(p.meta['PASS_ID']):02d}": p for p in decoded.passes}
    warnings = []
    if rep.missing or rep.corrupted:
        warnings.append(f"telemetry: {rep.missing} packet(s) missing, {rep.corrupted} corrupted; "
                        f"{rep.lost_time_s:.1f} s lost (TELEMETRY gaps)")  # fmt: skip
    metrics = {k: getattr(rep, k) for k in ("packets_read", "kept", "duplicated", "corrupted", "missing", "reordered",
                                            "lost_time_s", "n_hits")}  # fmt: skip
    return CoreResult({"l1_passes": passes, "attitude": decoded.attitude, "telemetry_report": rep.to_dict()},
                      warnings=warnings, metrics=metrics)  # fmt: skip


PREPROCESS = Brick(
    name="preprocess",
    summary="decode the telemetry packets of the passes into L1 raw passes and attitude, counting every defect",
    core=preprocess_core,
    inputs=(Port("telemetry", TELEMETRY_PASSES, "packet files, one per ground-station pass, any order"),),
    outputs=(
        Port("l1_passes", _L1_OUT, "L1 raw passes, one per on-board dump; lost time removed from the GTI"),
        Port("attitude", _ATT_OUT, "attitude (ATT) from the attitude packets"),
        Port("telemetry_report", json_codec("mxt_preprocess_report_{obs_id}.json"),
             "packets read, kept, duplicated, corrupted, missing, reordered; lost intervals"),
    ),  # fmt: skip
)
