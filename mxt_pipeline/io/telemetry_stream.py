"""Packet files of the ground-station passes: writing, reading, and their documentation.

A pass folder ``pass_NN/`` holds ``mxt_tm_<OBS_ID>_pNN.dat``: the packets as the ground
station received them, each preceded by a 4-byte big-endian record length (the
station's annotation, computed on the ground, so a byte corrupted on the link never
breaks the framing).  A last record cut short (the file ends inside it) is returned as
it is: decoding counts it as corrupted.  Files are written atomically.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mxt_pipeline.datamodel import Attitude, RawHits
from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.io.dataset_manifest import MANIFEST_NAME, read_manifest
from mxt_pipeline.io.fits import atomic_write_bytes
from mxt_pipeline.io.products import write_attitude, write_raw_hits
from mxt_pipeline.telemetry.downlink import DownlinkDefects, downlink
from mxt_pipeline.telemetry.packets import (
    APID_ATTITUDE,
    APID_HOUSEKEEPING,
    APID_SCIENCE,
    MAX_ATT_PER_PACKET,
    MAX_HITS_PER_PACKET,
)
from mxt_pipeline.telemetry.stream import DecodedTelemetry, decode_deliveries, encode_dumps

__all__ = ["PACKET_FILE_GLOB", "packet_file_name", "write_packet_file", "read_packet_file", "find_packet_files",
           "write_telemetry", "preprocess_passes", "write_preprocessed_manifest", "REPORT_NAME", "render_doc",
           "TELEMETRY_INDEX", "dataset_pass_dirs", "dataset_packet_files"]  # fmt: skip

#: Name of the defect report that preprocessing writes in the output dataset.
REPORT_NAME = "preprocess_report.json"
#: Fixed key of the downlink random stream (independent of the simulator's streams).
_DOWNLINK_KEY = 0x7E1E

_LEN = struct.Struct(">I")
#: Pattern of the packet files inside a pass folder.
PACKET_FILE_GLOB = "mxt_tm_*.dat"
#: Index of the telemetry of a simulated dataset (``telemetry/telemetry.json``).
TELEMETRY_INDEX = "telemetry/telemetry.json"


def packet_file_name(obs_id: str, pass_id: int) -> str:
    """File name of the packets of one pass."""
    return f"mxt_tm_{obs_id}_p{int(pass_id):02d}.dat"


def write_packet_file(path: str | os.PathLike[str], packets: Sequence[bytes]) -> Path:
    """Write packets as length-prefixed records (atomically); returns the path."""
    return atomic_write_bytes(path, b"".join(_LEN.pack(len(p)) + bytes(p) for p in packets))


def read_packet_file(path: str | os.PathLike[str], max_packets: int | None = None) -> list[bytes]:
    """The packets of a packet file, in file (arrival) order (the first ``max_packets`` only, when given).

    Raises
    ------
    MXTInputError
        The file is missing.
    MXTFormatError
        The file ends inside a record length (names the file and the byte offset).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise MXTInputError("packet file not found", file=p) from None
    out: list[bytes] = []
    off = 0
    view = memoryview(data)
    while off < len(data) and (max_packets is None or len(out) < max_packets):
        if off + _LEN.size > len(data):
            raise MXTFormatError(f"file ends inside the record length at byte {off}", file=p)
        (n,) = _LEN.unpack_from(data, off)
        off += _LEN.size
        out.append(bytes(view[off : off + n]))  # a short last record stays short: decoding counts it
        off += n
    return out


def find_packet_files(pass_dir: str | os.PathLike[str]) -> list[Path]:
    """The packet files of a pass folder (sorted); raises :class:`MXTInputError` if none."""
    d = Path(pass_dir)
    if not d.is_dir():
        raise MXTInputError("pass folder not found", file=d)
    files = sorted(d.glob(PACKET_FILE_GLOB))
    if not files:
        raise MXTInputError(f"no packet file ({PACKET_FILE_GLOB}) in the pass folder", file=d)
    return files


def dataset_pass_dirs(dataset_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> list[Path]:
    """The pass folders of a dataset's telemetry.

    ``files.telemetry`` of the manifest (folders relative to the dataset) when given,
    else the ``passes`` of ``telemetry/telemetry.json`` (written by ``mxt simulate
    --telemetry``, folders relative to ``telemetry/``).

    Raises
    ------
    MXTInputError
        The dataset lists no telemetry and has no telemetry index, or the index is
        unreadable (file and key named).
    """
    root = Path(dataset_dir)
    listed = (manifest.get("files") or {}).get("telemetry")
    if listed:
        return [root / rel for rel in listed]
    index = root / TELEMETRY_INDEX
    if not index.is_file():
        raise MXTInputError("no telemetry in the dataset: neither files.telemetry in dataset.json nor a telemetry "
                            "index (mxt simulate --telemetry writes it)", file=index)  # fmt: skip
    try:
        passes = json.loads(index.read_text(encoding="utf-8"))["passes"]
        if not isinstance(passes, list) or not passes or not all(isinstance(x, str) for x in passes):
            raise TypeError("'passes' must be a non-empty list of folder names")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MXTInputError(f"unreadable telemetry index: {exc}", file=index, keyword="passes") from None
    return [index.parent / rel for rel in passes]


def dataset_packet_files(dataset_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> list[Path]:
    """Every packet file of a dataset's telemetry, pass folder by pass folder (see :func:`dataset_pass_dirs`)."""
    return [f for d in dataset_pass_dirs(dataset_dir, manifest) for f in find_packet_files(d)]


def write_telemetry(passes: Sequence[RawHits], attitude: Attitude, root: str | os.PathLike[str], *,
                    defects: DownlinkDefects | None = None, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Write the packets of each pass under ``root/telemetry/pass_NN/`` through a (defective) downlink.

    ``root/telemetry/telemetry.json`` lists the pass folders, the defect rates and what
    was injected (the truth a test compares the decoder's report with).  Returns it.
    """
    defects = defects or DownlinkDefects()
    if not passes:
        raise MXTInputError("no pass to telemeter", keyword="passes")
    obs_id = str(passes[0].meta.get("OBS_ID", ""))
    dumps = encode_dumps(passes, attitude)
    deliveries, truth = downlink(dumps, defects, np.random.default_rng([seed, _DOWNLINK_KEY]))
    tm = Path(root) / "telemetry"
    folders = []
    for pass_id, packets in sorted(deliveries.items()):
        rel = f"pass_{pass_id:02d}"
        write_packet_file(tm / rel / packet_file_name(obs_id, pass_id), packets)
        folders.append(rel)
    doc = {"obs_id": obs_id, "passes": folders, "seed": seed, "defects": defects.to_dict(),
           "injected": {k: v for k, v in truth.to_dict().items() if k != "lost_packets"},
           "packets_generated": sum(len(v) for v in dumps.values())}  # fmt: skip
    atomic_write_bytes(tm / "telemetry.json", (json.dumps(doc, indent=2) + "\n").encode())
    return doc


def preprocess_passes(pass_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                      aux: str | os.PathLike[str] | None = None) -> DecodedTelemetry:  # fmt: skip
    """Decode the packet files of the pass folders into an L1 dataset folder ``out``.

    Writes ``l1/mxt_l1_raw_<OBS_ID>_pNN.fits`` (one per dump), ``aux/mxt_att_<OBS_ID>.fits``,
    ``preprocess_report.json`` and ``dataset.json``.  With ``aux`` (a dataset folder with
    its own ``dataset.json``), the observation keys of its manifest (pointing, span,
    trigger) are kept and its angle file and ``saa/`` folder copied; files are written
    atomically.

    Raises
    ------
    MXTInputError
        A pass folder or its packet file is missing, or ``out`` is one of the inputs.
    MXTFormatError
        Nothing could be decoded (see :func:`~mxt_pipeline.telemetry.stream.decode_deliveries`).
    """
    if not pass_dirs:
        raise MXTInputError("no pass folder given", keyword="PASS_DIR")
    deliveries = []
    for d in pass_dirs:
        for f in find_packet_files(d):
            deliveries.append(read_packet_file(f))
    decoded = decode_deliveries(deliveries)
    root = Path(out)
    obs_id = decoded.passes[0].meta["OBS_ID"]
    l1 = []
    for p in decoded.passes:
        rel = f"l1/mxt_l1_raw_{obs_id}_p{int(p.meta['PASS_ID']):02d}.fits"
        write_raw_hits(root / rel, p)
        l1.append(rel)
    att = f"aux/mxt_att_{obs_id}.fits"
    write_attitude(root / att, decoded.attitude)
    report = {"inputs": [str(Path(d).name) for d in pass_dirs], **decoded.report.to_dict()}
    atomic_write_bytes(root / REPORT_NAME, (json.dumps(report, indent=2) + "\n").encode())
    write_preprocessed_manifest(root, obs_id=obs_id, object_name=decoded.passes[0].meta.get("OBJECT"), l1=l1, att=att,
                                aux=aux)  # fmt: skip
    return decoded


def write_preprocessed_manifest(out: str | os.PathLike[str], *, obs_id: str, object_name: str | None,
                                l1: Sequence[str], att: str, aux: str | os.PathLike[str] | None = None) -> Path:  # fmt: skip
    """Write ``dataset.json`` of a preprocessed dataset (and copy the angle and SAA files of ``aux``).

    With ``aux`` (a dataset folder), its manifest keys (pointing, span, trigger) are kept
    and its angle file and SAA files copied (atomically).

    Raises
    ------
    MXTInputError
        ``aux`` is of another observation.
    """
    root = Path(out)
    base: dict[str, Any] = read_manifest(aux) if aux is not None else {}
    if base and base.get("obs_id") != obs_id:
        raise MXTInputError(f"the telemetry is of {obs_id}, the auxiliary dataset of {base.get('obs_id')}",
                            file=Path(aux) / MANIFEST_NAME, keyword="obs_id")  # fmt: skip
    files: dict[str, Any] = {"l1": list(l1), "att": att, "ang": None, "saa": []}
    if base:
        src = Path(aux)
        if base["files"].get("ang"):
            files["ang"] = base["files"]["ang"]
            atomic_write_bytes(root / files["ang"], (src / files["ang"]).read_bytes())
        for rel in base["files"].get("saa", []):
            atomic_write_bytes(root / rel, (src / rel).read_bytes())
            files["saa"].append(rel)
    manifest = {k: v for k, v in base.items() if k != "files"} or {"obs_id": obs_id}
    if "object" not in manifest and object_name:
        manifest["object"] = object_name
    manifest["files"] = files
    return atomic_write_bytes(root / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())


def render_doc() -> str:
    """The telemetry section of ``docs/formats.md`` (from the code's constants)."""
    return f"""
## Telemetry packets (CCSDS space packets)

`mxt simulate --telemetry` writes, per ground-station pass, `telemetry/pass_NN/mxt_tm_<OBS_ID>_pNN.dat`;
`mxt preprocess` decodes them into the L1 raw files and the ATT file above.

**Packet file.** A sequence of records: a 4-byte big-endian unsigned length (written by the
ground station, not telemetered), then the packet bytes as received.

**On-board dump.** Each L1 pass is one dump; the dump number is the PASS_ID. A dump is one
housekeeping packet, the science packets (hits in table order), the attitude packets, and a
second housekeeping packet. Sequence counters count per APID and dump from 0, modulo 2**14.

Every packet, big-endian, bit 0 = most significant:

| bytes | field | value |
| --- | --- | --- |
| 0-1 | version (3 bits), type (1), secondary header flag (1), APID (11) | 0, 0 (TM), 1, APID |
| 2-3 | sequence flags (2), sequence count (14) | 0b11 (unsegmented), counter |
| 4-5 | packet data length | octets after the primary header minus 1 |
| 6-9 | CUC coarse time | whole seconds since MJDREF (TT), unsigned 32-bit |
| 10-11 | CUC fine time | units of 2**-16 s, rounded down (P-field implicit: 4 + 2 octets) |
| 12-13 | dump number | PASS_ID of the dump, unsigned 16-bit |
| 14 .. n-3 | user data | per APID, below |
| n-2 .. n-1 | packet error control | CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of bytes 0 .. n-3 |

**APID {APID_SCIENCE:#05x}: science frame** (the hits of one frame, or one chunk of at most
{MAX_HITS_PER_PACKET} of them; the CUC tags the frame time):

| offset | field | type | meaning |
| --- | --- | --- | --- |
| 0 | TIME | float64 | frame time, exactly as in the L1 TIME column |
| 8 | FRAME | uint32 | frame counter |
| 12 | CHUNK | uint16 | index of this chunk in the frame |
| 14 | NCHUNK | uint16 | chunks of the frame |
| 16 | NHITS | uint16 | hits in this packet |
| 18 + 6 i | RAWY, RAWZ, PHA | 3 x uint16 | hit i |

**APID {APID_ATTITUDE:#05x}: attitude** (at most {MAX_ATT_PER_PACKET} samples; the CUC tags the first):

| offset | field | type | meaning |
| --- | --- | --- | --- |
| 0 | NSAMP | uint16 | samples in this packet |
| 2 + 64 i | TIME, QPARAM (x, y, z, w), RA, DEC, ROLL | 8 x float64 | sample i, as in the ATT file |

**APID {APID_HOUSEKEEPING:#05x}: housekeeping** (dump description; the CUC tags the start of the coverage):

| offset | field | type | meaning |
| --- | --- | --- | --- |
| 0 | OBS_ID | 16 bytes ASCII, NUL-padded | observation |
| 16 | OBJECT | 32 bytes ASCII, NUL-padded | target name (empty: none) |
| 48 | STATION | 16 bytes ASCII, NUL-padded | ground station |
| 64 | PASS_ID | uint16 | pass number (= dump number) |
| 66 | FRAMETIM | float64 | frame time (s) |
| 74 | NSCI | uint32 | science packets of the dump |
| 78 | NATT | uint32 | attitude packets of the dump |
| 82 | NGTI | uint16 | rows of the pass GTI |
| 84 + 16 i | START, STOP | 2 x float64 | GTI row i |

## Telemetry defect report (`preprocess_report.json`)

`mxt preprocess` checks every packet and writes the counts: `packets_read` =
`kept` + `duplicated` + `corrupted`, and `expected` = `kept` + `missing`.

| key | meaning |
| --- | --- |
| `packets_read`, `bytes_read` | records read from the packet files |
| `corrupted` | records that fail the CRC, length, APID, flag or user-data checks (dropped) |
| `duplicated` | byte-identical copies of a packet already kept (pass overlap, repeats) |
| `kept` | distinct valid packets |
| `expected` | packets the dumps hold: sequence counters, and the NSCI/NATT of the housekeeping |
| `missing` | expected packets with no valid copy (lost, or only received corrupted) |
| `reordered` | kept packets that arrived after a packet that follows them in their stream |
| `by_apid` | per content (science, attitude, housekeeping): valid packets `read`, `kept`, `duplicated`, `missing`, `reordered` (a corrupted packet has no trustworthy APID: it counts in the total only) |
| `lost_intervals` | per dump, `[start, stop)` of the time of missing science packets: removed from the pass GTI, so calibration records it as a gap with ORIGIN=TELEMETRY |
| `dumps_without_housekeeping` | dumps whose two housekeeping packets were lost: GTI from the first to the last frame, STATION=UNKNOWN |
"""
