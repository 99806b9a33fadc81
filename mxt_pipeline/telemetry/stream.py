"""L1 <-> telemetry: the packets of an observation's dumps, and their decoding with a defect report.

Encoding (:func:`encode_dumps`): each L1 raw pass is one on-board *dump* (its PASS_ID is
the dump number).  A dump is a housekeeping packet, the science packets of its hits in
table order (one per run of hits sharing FRAME and TIME, cut in chunks of
:data:`~mxt_pipeline.telemetry.packets.MAX_HITS_PER_PACKET`), the attitude packets of
the samples assigned to it and a second housekeeping packet.  Sequence counters run
per APID and dump from 0 (modulo 2**14).  An attitude sample goes to the first dump
(in time order) whose coverage ends at or after it, else to the last dump.

Decoding (:func:`decode_deliveries`) takes the packets of every ground-station
delivery in arrival order and

1. checks each packet (CRC-16, length, APID, flags, user data): a failure is counted
   as *corrupted* and the packet dropped;
2. drops byte-identical copies (a pass re-sending the end of the previous dump, or a
   packet repeated in one delivery): *duplicated*;
3. restores each (dump, APID) stream in time order, the 14-bit counter being unwrapped
   along time (packets sharing a time are ordered by their counter distance to the
   previous packet), and counts *reordered* packets (kept packets that arrived, in
   their delivery, after a packet that follows them in the stream);
4. counts *missing* packets from the counter gaps, the start at 0 and the totals the
   housekeeping announces; each run of missing science packets becomes a lost time
   interval, from half a frame after the last complete frame before it to half a
   frame before the first complete frame after it, and is removed from the dump's GTI (so that the
   calibration sees a TELEMETRY gap).

Nothing is dropped silently: ``read = kept + duplicated + corrupted`` and
``expected = kept + missing`` (checked by :meth:`TelemetryReport.check`).
A run of 2**14 or more consecutive missing packets of one stream cannot be told from
a shorter one (the counter wraps); it is undercounted by a multiple of 2**14.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI, Attitude, RawHits
from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.telemetry.packets import (
    APID_ATTITUDE,
    APID_HOUSEKEEPING,
    APID_SCIENCE,
    ATT_DTYPE,
    HIT_DTYPE,
    MAX_ATT_PER_PACKET,
    MAX_HITS_PER_PACKET,
    SEQ_MODULO,
    Housekeeping,
    Packet,
    attitude_payload,
    build_packet,
    housekeeping_payload,
    parse_attitude,
    parse_housekeeping,
    parse_packet,
    parse_science,
    science_payload,
)

__all__ = ["encode_dumps", "decode_deliveries", "TelemetryReport", "DecodedTelemetry", "DEFECTS"]

#: The defect counts of the report.
DEFECTS = ("missing", "duplicated", "corrupted", "reordered")
_APID_NAMES = {APID_SCIENCE: "science", APID_ATTITUDE: "attitude", APID_HOUSEKEEPING: "housekeeping"}
#: Housekeeping packets per dump (one at each end).
HK_PER_DUMP = 2


# ---- encoding ----------------------------------------------------------------------------


def _runs(frame: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Start indices of the runs of rows sharing FRAME and TIME (plus the end)."""
    n = frame.size
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.flatnonzero((frame[1:] != frame[:-1]) | (time[1:] != time[:-1])) + 1
    return np.r_[0, change, n]


def _science_packets(hits: RawHits, dump: int) -> list[bytes]:
    t = np.asarray(hits["TIME"], dtype=np.float64)
    frame = np.asarray(hits["FRAME"], dtype=np.int64)
    rawy, rawz, pha = (np.asarray(hits[c], dtype=np.int64) for c in ("RAWY", "RAWZ", "PHA"))
    for name, col in (("RAWY", rawy), ("RAWZ", rawz), ("PHA", pha)):
        # The L1 columns are 16-bit signed ('I'): only their non-negative range is carried.
        if col.size and (col.min() < 0 or col.max() > 0x7FFF):
            raise MXTInputError(f"{name} outside 0-32767 cannot be telemetered", column=name)
    if frame.size and (frame.min() < 0 or frame.max() > 0xFFFFFFFF):
        raise MXTInputError("FRAME outside 0-2**32-1 cannot be telemetered", column="FRAME")
    bounds = _runs(frame, t)
    out = []
    seq = 0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        n_chunks = -(-(b - a) // MAX_HITS_PER_PACKET)
        for k in range(n_chunks):
            lo, hi = a + k * MAX_HITS_PER_PACKET, min(b, a + (k + 1) * MAX_HITS_PER_PACKET)
            data = science_payload(t[a], frame[a], k, n_chunks, rawy[lo:hi], rawz[lo:hi], pha[lo:hi])
            out.append(build_packet(APID_SCIENCE, seq, t[a], dump, data))
            seq += 1
    return out


def _attitude_samples(att: Attitude) -> np.ndarray:
    arr = np.empty(len(att), dtype=ATT_DTYPE)
    arr["TIME"] = att["TIME"]
    arr["QPARAM"] = np.asarray(att["QPARAM"]).reshape(-1, 4)
    for c in ("RA", "DEC", "ROLL"):
        arr[c] = att[c]
    return arr


def encode_dumps(passes: Sequence[RawHits], attitude: Attitude | None = None) -> dict[int, list[bytes]]:
    """The packets of every dump (key: PASS_ID), in on-board generation order.

    Raises
    ------
    MXTInputError
        Two passes share a PASS_ID, a pass lacks OBS_ID/PASS_ID/STATION, or a value does
        not fit its packet field.
    """
    dumps: dict[int, list[bytes]] = {}
    ids = [int(p.meta.get("PASS_ID", -1)) for p in passes]
    if len(set(ids)) != len(ids) or any(not 0 <= i <= 0xFFFF for i in ids):
        raise MXTInputError(f"passes need distinct PASS_ID in 0-65535, got {ids}", keyword="PASS_ID")
    samples = _attitude_samples(attitude) if attitude is not None and len(attitude) else np.empty(0, ATT_DTYPE)
    # Attitude sample -> dump: first dump (by coverage start) whose coverage ends at or after it.
    order = sorted(range(len(passes)), key=lambda i: (passes[i].gti.tstart if len(passes[i].gti) else 0.0, ids[i]))
    owner = np.full(samples.size, order[-1] if order else -1)
    assigned = np.zeros(samples.size, dtype=bool)
    for i in order:
        g = passes[i].gti
        if len(g):
            sel = ~assigned & (samples["TIME"] <= g.tstop)
            owner[sel] = i
            assigned |= sel
    for i, p in enumerate(passes):
        dump = ids[i]
        for key in ("OBS_ID", "STATION"):
            if key not in p.meta:
                raise MXTInputError(f"pass {dump} lacks {key}", keyword=key)
        sci = _science_packets(p, dump)
        mine = samples[owner == i]
        att = [
            build_packet(APID_ATTITUDE, k, float(mine["TIME"][j]), dump, attitude_payload(mine[j : j + MAX_ATT_PER_PACKET]))
            for k, j in enumerate(range(0, mine.size, MAX_ATT_PER_PACKET))
        ]
        hk = Housekeeping(
            obs_id=str(p.meta["OBS_ID"]), object=str(p.meta.get("OBJECT", "") or ""), station=str(p.meta["STATION"]),
            pass_id=dump, frametime=float(p.meta.get("FRAMETIM", C.FRAME_TIME_S)), n_science=len(sci),
            n_attitude=len(att), gti_start=tuple(map(float, p.gti.start)), gti_stop=tuple(map(float, p.gti.stop)),
        )
        t_hk = float(p.gti.tstart) if len(p.gti) else 0.0
        payload = housekeeping_payload(hk)
        dumps[dump] = [build_packet(APID_HOUSEKEEPING, 0, t_hk, dump, payload), *sci, *att,
                       build_packet(APID_HOUSEKEEPING, 1, t_hk, dump, payload)]  # fmt: skip
    return dumps


# ---- decoding ----------------------------------------------------------------------------


@dataclass
class TelemetryReport:
    """Counts of what decoding read, kept and found wrong (keys of ``by_apid``: content names)."""

    n_deliveries: int = 0
    n_dumps: int = 0
    packets_read: int = 0
    bytes_read: int = 0
    kept: int = 0
    expected: int = 0
    missing: int = 0
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0
    by_apid: dict[str, dict[str, int]] = field(default_factory=dict)
    dumps_without_housekeeping: list[int] = field(default_factory=list)
    lost_intervals: list[dict[str, float]] = field(default_factory=list)
    lost_time_s: float = 0.0
    n_hits: int = 0
    n_attitude_samples: int = 0

    def check(self) -> None:
        """Raise :class:`MXTFormatError` unless the counts add up."""
        if self.packets_read != self.kept + self.duplicated + self.corrupted:
            raise MXTFormatError(f"report does not add up: read {self.packets_read} != kept {self.kept} + duplicated "
                                 f"{self.duplicated} + corrupted {self.corrupted}", keyword="packets_read")  # fmt: skip
        if self.expected != self.kept + self.missing:
            raise MXTFormatError(f"report does not add up: expected {self.expected} != kept {self.kept} + missing "
                                 f"{self.missing}", keyword="expected")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DecodedTelemetry:
    """L1 passes (one per dump, PASS_ID order), the attitude and the report."""

    passes: list[RawHits]
    attitude: Attitude
    report: TelemetryReport


@dataclass
class _Item:
    packet: Packet
    key: float  # time that orders the stream
    delivery: int
    position: int
    content: Any
    unwrapped: int = -1


def _content(p: Packet) -> tuple[float, Any]:
    if p.apid == APID_SCIENCE:
        s = parse_science(p.data)
        return s.time, s
    if p.apid == APID_ATTITUDE:
        a = parse_attitude(p.data)
        if a.size == 0:
            raise MXTFormatError("attitude packet without samples", keyword="NSAMP")
        return float(a["TIME"][0]), a
    return p.cuc_time, parse_housekeeping(p.data)


def _unwrap(items: list[_Item]) -> None:
    """Give each item of one (dump, APID) stream its unwrapped counter, in time order."""
    items.sort(key=lambda it: it.key)
    ref = -1
    i = 0
    while i < len(items):
        j = i
        while j < len(items) and items[j].key == items[i].key:
            j += 1
        group = items[i:j]
        for it in group:
            it.unwrapped = ref + 1 + (it.packet.seq_count - ref - 1) % SEQ_MODULO
        group.sort(key=lambda it: it.unwrapped)
        items[i:j] = group
        ref = group[-1].unwrapped
        i = j


def _lost_intervals(sci: list[_Item], n_expected: int, gti: GTI, frametime: float) -> tuple[list[tuple[float, float]], int]:
    """Lost time intervals of a science stream and the number of missing packets."""
    lost: list[tuple[float, float]] = []
    missing = 0
    t0 = float(gti.tstart) if len(gti) else 0.0
    t1 = float(gti.tstop) if len(gti) else 0.0

    # Half a frame from a received frame time: a bound that lies between two frame times
    # even when sums of frame times round differently (frames sit on a grid of FRAMETIM).
    half = 0.5 * frametime

    def end_of(it: _Item) -> float:  # nothing at or before its frame is missing after it
        return it.key + half if it.content.complete_end else it.key - half

    def start_of(it: _Item) -> float:
        return it.key - half if it.content.complete_start else it.key + half

    prev: _Item | None = None
    for it in sci:
        gap = it.unwrapped - (prev.unwrapped if prev is not None else -1) - 1
        if gap > 0:
            missing += gap
            lost.append((end_of(prev) if prev is not None else t0, start_of(it)))
        elif prev is not None and not (prev.content.complete_end or it.content.chunk == prev.content.chunk + 1):
            lost.append((prev.key - half, it.key + half))  # inconsistent chunks: distrust the frame
        prev = it
    tail = n_expected - (prev.unwrapped + 1 if prev is not None else 0)
    if tail > 0:
        missing += tail
        lost.append((end_of(prev) if prev is not None else t0, t1))
    # Clip to the coverage: the lost time is what the pass should have delivered.
    lost = [(max(a, t0), min(b, t1)) for a, b in lost]
    return [(a, b) for a, b in lost if b > a], missing


def decode_deliveries(deliveries: Sequence[Sequence[bytes]]) -> DecodedTelemetry:
    """Decode the packets of the deliveries (each in arrival order) into L1 passes and attitude.

    Raises
    ------
    MXTFormatError
        No dump could be described (no housekeeping packet of any dump survived), or
        the dumps disagree on OBS_ID or FRAMETIM.
    """
    rep = TelemetryReport(n_deliveries=len(deliveries))
    seen: set[bytes] = set()
    streams: dict[tuple[int, int], list[_Item]] = {}
    # Per content: a corrupted packet has no trustworthy APID, so it is counted only in the total.
    counts = {name: dict.fromkeys(("read", "kept", "duplicated", "missing", "reordered"), 0)
              for name in _APID_NAMES.values()}  # fmt: skip
    for d, packets in enumerate(deliveries):
        for pos, raw in enumerate(packets):
            rep.packets_read += 1
            rep.bytes_read += len(raw)
            try:
                pkt = parse_packet(raw)
                key, content = _content(pkt)
            except MXTFormatError:
                rep.corrupted += 1
                continue
            name = _APID_NAMES[pkt.apid]
            counts[name]["read"] += 1
            if pkt.raw in seen:
                rep.duplicated += 1
                counts[name]["duplicated"] += 1
                continue
            seen.add(pkt.raw)
            rep.kept += 1
            counts[name]["kept"] += 1
            streams.setdefault((pkt.dump, pkt.apid), []).append(_Item(pkt, key, d, pos, content))
    for items in streams.values():
        _unwrap(items)
        # Reordered: kept packets that arrived after a later packet of their stream, in their delivery.
        by_delivery: dict[int, list[_Item]] = {}
        for it in items:
            by_delivery.setdefault(it.delivery, []).append(it)
        for group in by_delivery.values():
            group.sort(key=lambda it: it.position)
            top = -1
            for it in group:
                if it.unwrapped < top:
                    rep.reordered += 1
                    counts[_APID_NAMES[it.packet.apid]]["reordered"] += 1
                top = max(top, it.unwrapped)
    dump_ids = sorted({dump for dump, _ in streams})
    hks = {d: streams[(d, APID_HOUSEKEEPING)][0].content for d in dump_ids if (d, APID_HOUSEKEEPING) in streams}
    if not hks:
        raise MXTFormatError("no housekeeping packet survived: the dumps cannot be described", keyword="APID")
    obs_ids = {h.obs_id for h in hks.values()}
    frametimes = {h.frametime for h in hks.values()}
    if len(obs_ids) != 1 or len(frametimes) != 1:
        raise MXTFormatError(f"dumps disagree on OBS_ID {sorted(obs_ids)} or FRAMETIM {sorted(frametimes)}",
                             keyword="OBS_ID")  # fmt: skip
    obs_id, frametime = obs_ids.pop(), frametimes.pop()
    passes: list[RawHits] = []
    att_parts: list[np.ndarray] = []
    for dump in dump_ids:
        sci = streams.get((dump, APID_SCIENCE), [])
        att = streams.get((dump, APID_ATTITUDE), [])
        hk_items = streams.get((dump, APID_HOUSEKEEPING), [])
        hk = hks.get(dump)
        if hk is None:
            # Both housekeeping copies lost: describe the dump from its science packets.
            rep.dumps_without_housekeeping.append(dump)
            times = [it.key for it in sci] or [0.0]
            gti = GTI([min(times)], [max(times) + frametime])
            meta: dict[str, Any] = {"OBS_ID": obs_id, "PASS_ID": dump, "STATION": "UNKNOWN", "FRAMETIM": frametime}
            n_sci = sci[-1].unwrapped + 1 if sci else 0
            n_att = att[-1].unwrapped + 1 if att else 0
        else:
            gti = GTI(hk.gti_start, hk.gti_stop)
            meta = hk.meta()
            n_sci, n_att = hk.n_science, hk.n_attitude
        lost, miss_sci = _lost_intervals(sci, n_sci, gti, frametime)
        miss_att = max(n_att - len(att), 0)
        miss_hk = HK_PER_DUMP - len(hk_items)
        for name, m in (("science", miss_sci), ("attitude", miss_att), ("housekeeping", miss_hk)):
            counts[name]["missing"] += m
            rep.missing += m
        rep.expected += len(sci) + len(att) + len(hk_items) + miss_sci + miss_att + miss_hk
        for a, b in lost:
            rep.lost_intervals.append({"dump": dump, "start": a, "stop": b})
        if lost:
            gti = gti.subtract(GTI([a for a, _ in lost], [b for _, b in lost]))
        passes.append(RawHits(_hits_table(sci), gti=gti, meta=meta))
        att_parts += [it.content for it in att]
    rep.n_dumps = len(dump_ids)
    rep.by_apid = counts
    if rep.lost_intervals:
        rep.lost_time_s = GTI([x["start"] for x in rep.lost_intervals], [x["stop"] for x in rep.lost_intervals]).exposure
    rep.n_hits = sum(len(p) for p in passes)
    attitude = _attitude(att_parts, obs_id)
    rep.n_attitude_samples = len(attitude)
    rep.check()
    return DecodedTelemetry(passes, attitude, rep)


def _hits_table(sci: list[_Item]) -> Table:
    if not sci:
        return Table({"TIME": np.empty(0), "FRAME": np.empty(0, np.int32), "RAWY": np.empty(0, np.int16),
                      "RAWZ": np.empty(0, np.int16), "PHA": np.empty(0, np.int16)})  # fmt: skip
    # One join of the hit bytes and one view: faster than concatenating structured arrays.
    hits = np.frombuffer(b"".join([it.content.hits.tobytes() for it in sci]), dtype=HIT_DTYPE)
    sizes = np.array([it.content.hits.size for it in sci])
    return Table({
        "TIME": np.repeat(np.array([it.content.time for it in sci], dtype=np.float64), sizes),
        "FRAME": np.repeat(np.array([it.content.frame for it in sci], dtype=np.int64), sizes).astype(np.int32),
        "RAWY": hits["RAWY"].astype(np.int16),
        "RAWZ": hits["RAWZ"].astype(np.int16),
        "PHA": hits["PHA"].astype(np.int16),
    })


def _attitude(parts: list[np.ndarray], obs_id: str) -> Attitude:
    samples = np.concatenate(parts) if parts else np.empty(0, ATT_DTYPE)
    _, first = np.unique(samples["TIME"], return_index=True)  # sorted, one sample per time
    s = samples[first]
    table = Table({"TIME": s["TIME"].astype(np.float64), "QPARAM": s["QPARAM"].astype(np.float64),
                   "RA": s["RA"].astype(np.float64), "DEC": s["DEC"].astype(np.float64),
                   "ROLL": s["ROLL"].astype(np.float64)})  # fmt: skip
    return Attitude(table, meta={"OBS_ID": obs_id})


def deliveries_from_mapping(dumps: Mapping[int, Sequence[bytes]]) -> list[list[bytes]]:
    """The dumps as deliveries with no defect (one delivery per dump, PASS_ID order)."""
    return [list(dumps[k]) for k in sorted(dumps)]
