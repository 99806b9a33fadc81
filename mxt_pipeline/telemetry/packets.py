"""CCSDS space packets of the MXT telemetry: encoding and decoding of single packets.

Every packet (layout field by field in ``docs/formats.md``, "Telemetry packets") is

* the 6-byte CCSDS primary header (version 0, type TM, secondary header present,
  unsegmented, one APID per content, a 14-bit sequence counter per APID and dump),
  built and parsed by the ``spacepackets`` library;
* an 8-byte secondary header: the CCSDS unsegmented time code (CUC, 4 octets of
  coarse seconds since MJDREF and 2 octets of fine time in units of 2**-16 s, P-field
  implicit) and the number of the on-board dump the packet belongs to (the
  ground-station pass that delivers it first);
* the user data of the content (science frame, attitude samples, housekeeping);
* the packet error control: CRC-16/CCITT-FALSE (polynomial 0x1021, initial value
  0xFFFF) of every preceding byte, the checksum of the ECSS PUS standard.

Everything here works on bytes in memory; the packet files are read and written by
:mod:`mxt_pipeline.io.telemetry_stream`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastcrc import crc16
from spacepackets.ccsds.spacepacket import (
    SPACE_PACKET_HEADER_SIZE,
    PacketType,
    SequenceFlags,
    SpacePacketHeader,
)

from mxt_pipeline.errors import MXTFormatError

__all__ = [
    "APID_SCIENCE",
    "APID_ATTITUDE",
    "APID_HOUSEKEEPING",
    "APIDS",
    "SEQ_MODULO",
    "SECONDARY_HEADER_SIZE",
    "MAX_HITS_PER_PACKET",
    "MAX_ATT_PER_PACKET",
    "HIT_DTYPE",
    "ATT_DTYPE",
    "Packet",
    "ScienceData",
    "Housekeeping",
    "cuc_encode",
    "cuc_decode",
    "crc16_ccitt",
    "build_packet",
    "parse_packet",
    "science_payload",
    "parse_science",
    "attitude_payload",
    "parse_attitude",
    "housekeeping_payload",
    "parse_housekeeping",
]

#: APID of the science frames (pixel hits of one frame, or a chunk of them).
APID_SCIENCE = 0x101
#: APID of the attitude samples.
APID_ATTITUDE = 0x102
#: APID of the housekeeping (dump description: observation, station, coverage, counts).
APID_HOUSEKEEPING = 0x103
APIDS = (APID_SCIENCE, APID_ATTITUDE, APID_HOUSEKEEPING)

#: The CCSDS sequence counter has 14 bits.
SEQ_MODULO = 1 << 14
#: CUC (4 + 2 octets) and dump number (2 octets).
SECONDARY_HEADER_SIZE = 8
_PEC_SIZE = 2
#: Hits per science packet (6 bytes each: a packet stays under 6.2 kB).
MAX_HITS_PER_PACKET = 1024
#: Attitude samples per attitude packet (64 bytes each).
MAX_ATT_PER_PACKET = 16

#: One hit in a science packet: RAWY, RAWZ, PHA as big-endian unsigned 16-bit.
HIT_DTYPE = np.dtype([("RAWY", ">u2"), ("RAWZ", ">u2"), ("PHA", ">u2")])
#: One attitude sample: TIME, QPARAM (x, y, z, w), RA, DEC, ROLL as big-endian doubles.
ATT_DTYPE = np.dtype([("TIME", ">f8"), ("QPARAM", ">f8", (4,)), ("RA", ">f8"), ("DEC", ">f8"), ("ROLL", ">f8")])

_SEC = struct.Struct(">IHH")  # CUC coarse, CUC fine, dump number
_SCI = struct.Struct(">dIHHH")  # TIME, FRAME, CHUNK, NCHUNK, NHITS
_ATT = struct.Struct(">H")  # NSAMP
_HK = struct.Struct(">16s32s16sHdIIH")  # OBS_ID, OBJECT, STATION, PASS_ID, FRAMETIM, NSCI, NATT, NGTI
_GTI = struct.Struct(">dd")


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (the PUS packet error control)."""
    return int(crc16.ibm_3740(bytes(data)))


def cuc_encode(met: float) -> tuple[int, int]:
    """CUC time code (coarse seconds, fine units of 2**-16 s) of a mission time.

    The fine part is rounded down, so the code never lies after the time it tags.
    Raises :class:`MXTFormatError` outside the 32-bit coarse range.
    """
    if not np.isfinite(met) or met < 0 or met >= 2.0**32:
        raise MXTFormatError(f"time {met!r} outside the CUC range [0, 2**32) s", keyword="CUC")
    coarse = int(np.floor(met))
    fine = min(int(np.floor((met - coarse) * 65536.0)), 65535)
    return coarse, fine


def cuc_decode(coarse: int, fine: int) -> float:
    """Mission time of a CUC time code."""
    return coarse + fine / 65536.0


@dataclass(frozen=True)
class Packet:
    """A decoded packet: header fields, time code, dump number and user data."""

    apid: int
    seq_count: int
    cuc_coarse: int
    cuc_fine: int
    dump: int
    data: bytes
    raw: bytes

    @property
    def cuc_time(self) -> float:
        return cuc_decode(self.cuc_coarse, self.cuc_fine)


def build_packet(apid: int, seq_count: int, met: float, dump: int, data: bytes) -> bytes:
    """One packet: primary header, secondary header (CUC, dump), ``data``, CRC-16."""
    coarse, fine = cuc_encode(met)
    body = _SEC.pack(coarse, fine, dump) + data
    header = SpacePacketHeader(
        packet_type=PacketType.TM,
        apid=apid,
        seq_count=seq_count % SEQ_MODULO,
        # CCSDS data length field: octets after the primary header, minus one.
        data_len=len(body) + _PEC_SIZE - 1,
        sec_header_flag=True,
        seq_flags=SequenceFlags.UNSEGMENTED,
    )
    raw = header.pack() + body
    return bytes(raw) + struct.pack(">H", crc16_ccitt(raw))


def parse_packet(raw: bytes) -> Packet:
    """Check and decode one packet.

    Raises
    ------
    MXTFormatError
        Wrong length, CRC mismatch, unknown APID or header flags other than those of
        an MXT telemetry packet (the message names the field).
    """
    n = len(raw)
    if n < SPACE_PACKET_HEADER_SIZE + SECONDARY_HEADER_SIZE + _PEC_SIZE:
        raise MXTFormatError(f"packet of {n} bytes is shorter than its headers", keyword="PACKET_LENGTH")
    if crc16_ccitt(raw[:-2]) != struct.unpack(">H", raw[-2:])[0]:
        raise MXTFormatError("packet error control (CRC-16) mismatch", keyword="PEC")
    header = SpacePacketHeader.unpack(raw[:SPACE_PACKET_HEADER_SIZE])
    if header.packet_len != n:
        raise MXTFormatError(f"data length field says {header.packet_len} bytes, packet has {n}", keyword="PACKET_LENGTH")
    if header.apid not in APIDS:
        raise MXTFormatError(f"unknown APID {header.apid:#x}", keyword="APID")
    if (header.ccsds_version, header.packet_type, header.sec_header_flag, header.seq_flags) != (
        0, PacketType.TM, True, SequenceFlags.UNSEGMENTED,
    ):
        raise MXTFormatError("primary header flags are not those of an MXT TM packet", keyword="PACKET_ID")
    coarse, fine, dump = _SEC.unpack_from(raw, SPACE_PACKET_HEADER_SIZE)
    data = raw[SPACE_PACKET_HEADER_SIZE + SECONDARY_HEADER_SIZE : -_PEC_SIZE]
    return Packet(header.apid, header.seq_count, coarse, fine, dump, bytes(data), bytes(raw))


# ---- science frames ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScienceData:
    """User data of a science packet: hits of one frame (or one chunk of a frame)."""

    time: float
    frame: int
    chunk: int
    n_chunks: int
    hits: np.ndarray  # HIT_DTYPE

    @property
    def complete_start(self) -> bool:
        """The packet holds the first hits of its frame."""
        return self.chunk == 0

    @property
    def complete_end(self) -> bool:
        """The packet holds the last hits of its frame."""
        return self.chunk == self.n_chunks - 1


def science_payload(time: float, frame: int, chunk: int, n_chunks: int, rawy: np.ndarray, rawz: np.ndarray,
                    pha: np.ndarray) -> bytes:  # fmt: skip
    """User data of a science packet (TIME is carried exactly, as an IEEE double)."""
    hits = np.empty(len(rawy), dtype=HIT_DTYPE)
    hits["RAWY"], hits["RAWZ"], hits["PHA"] = rawy, rawz, pha
    return _SCI.pack(float(time), int(frame), chunk, n_chunks, len(hits)) + hits.tobytes()


def parse_science(data: bytes) -> ScienceData:
    """Decode the user data of a science packet (raises :class:`MXTFormatError`)."""
    if len(data) < _SCI.size:
        raise MXTFormatError("science packet too short", keyword="NHITS")
    time, frame, chunk, n_chunks, nhits = _SCI.unpack_from(data)
    if len(data) != _SCI.size + nhits * HIT_DTYPE.itemsize:
        raise MXTFormatError(f"science packet declares {nhits} hits but holds {len(data) - _SCI.size} bytes",
                             keyword="NHITS")  # fmt: skip
    if not chunk < n_chunks:
        raise MXTFormatError(f"chunk {chunk} of {n_chunks}", keyword="CHUNK")
    hits = np.frombuffer(data, dtype=HIT_DTYPE, offset=_SCI.size, count=nhits)
    return ScienceData(time, frame, chunk, n_chunks, hits)


# ---- attitude ----------------------------------------------------------------------------


def attitude_payload(samples: np.ndarray) -> bytes:
    """User data of an attitude packet (``samples`` has the fields of ATT_DTYPE)."""
    arr = np.empty(len(samples), dtype=ATT_DTYPE)
    for name in ATT_DTYPE.names:
        arr[name] = samples[name]
    return _ATT.pack(len(arr)) + arr.tobytes()


def parse_attitude(data: bytes) -> np.ndarray:
    """Decode the user data of an attitude packet into an ATT_DTYPE array."""
    if len(data) < _ATT.size:
        raise MXTFormatError("attitude packet too short", keyword="NSAMP")
    (n,) = _ATT.unpack_from(data)
    if len(data) != _ATT.size + n * ATT_DTYPE.itemsize:
        raise MXTFormatError(f"attitude packet declares {n} samples", keyword="NSAMP")
    return np.frombuffer(data, dtype=ATT_DTYPE, offset=_ATT.size, count=n)


# ---- housekeeping ------------------------------------------------------------------------


@dataclass(frozen=True)
class Housekeeping:
    """The dump description carried by the housekeeping packets."""

    obs_id: str
    object: str
    station: str
    pass_id: int
    frametime: float
    n_science: int
    n_attitude: int
    gti_start: tuple[float, ...]
    gti_stop: tuple[float, ...]

    def meta(self) -> dict[str, Any]:
        """The L1 raw metadata (OBS_ID, PASS_ID, STATION, FRAMETIM and OBJECT if any)."""
        m: dict[str, Any] = {"OBS_ID": self.obs_id, "PASS_ID": self.pass_id, "STATION": self.station,
                             "FRAMETIM": self.frametime}  # fmt: skip
        if self.object:
            m["OBJECT"] = self.object
        return m


def _ascii(value: str, size: int, name: str) -> bytes:
    try:
        b = value.encode("ascii")
    except UnicodeEncodeError:
        raise MXTFormatError(f"{name} {value!r} is not ASCII", keyword=name) from None
    if len(b) > size or b"\x00" in b:
        raise MXTFormatError(f"{name} {value!r} does not fit in {size} bytes", keyword=name)
    return b


def housekeeping_payload(hk: Housekeeping) -> bytes:
    """User data of a housekeeping packet (strings NUL-padded ASCII)."""
    head = _HK.pack(_ascii(hk.obs_id, 16, "OBS_ID"), _ascii(hk.object, 32, "OBJECT"), _ascii(hk.station, 16, "STATION"),
                    hk.pass_id, hk.frametime, hk.n_science, hk.n_attitude, len(hk.gti_start))  # fmt: skip
    return head + b"".join(_GTI.pack(a, b) for a, b in zip(hk.gti_start, hk.gti_stop, strict=True))


def parse_housekeeping(data: bytes) -> Housekeeping:
    """Decode the user data of a housekeeping packet."""
    if len(data) < _HK.size:
        raise MXTFormatError("housekeeping packet too short", keyword="NGTI")
    obs, obj, station, pass_id, frametime, nsci, natt, ngti = _HK.unpack_from(data)
    if len(data) != _HK.size + ngti * _GTI.size:
        raise MXTFormatError(f"housekeeping packet declares {ngti} GTI rows", keyword="NGTI")
    pairs = [_GTI.unpack_from(data, _HK.size + i * _GTI.size) for i in range(ngti)]
    try:
        text = [b.rstrip(b"\x00").decode("ascii") for b in (obs, obj, station)]
    except UnicodeDecodeError:
        raise MXTFormatError("housekeeping strings are not ASCII", keyword="OBS_ID") from None
    return Housekeeping(text[0], text[1], text[2], pass_id, frametime, nsci, natt,
                        tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))  # fmt: skip
