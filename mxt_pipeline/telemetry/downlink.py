"""Downlink defects: what a real ground segment does to the packets of the dumps (seeded).

:func:`downlink` turns the packets of each dump into the delivery of its ground-station
pass, in this order:

* **overlap**: the pass of dump *k* (PASS_ID order) first re-sends the last
  ``overlap_packets`` packets of dump *k-1* (the on-board store resumes a little before
  where the previous pass stopped): byte-identical duplicates;
* **loss**: each packet is lost with probability ``loss_rate`` (independently, re-sent
  copies included);
* **reordering**: with probability ``reorder_rate`` a packet is delivered up to
  ``reorder_window`` positions later;
* **corruption**: each delivered byte is replaced by a different value with
  probability ``corrupt_rate``.

The returned :class:`DownlinkTruth` counts what was injected, so that tests can compare
the decoder's report with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mxt_pipeline.errors import MXTInputError

__all__ = ["DownlinkDefects", "DownlinkTruth", "downlink"]


@dataclass(frozen=True)
class DownlinkDefects:
    """Rates of the downlink defects (all zero: a perfect downlink)."""

    loss_rate: float = 0.0
    overlap_packets: int = 0
    reorder_rate: float = 0.0
    reorder_window: int = 16
    corrupt_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss_rate", "reorder_rate", "corrupt_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise MXTInputError(f"{name} must be in [0, 1], got {v}", keyword=name)
        if self.overlap_packets < 0 or self.reorder_window < 1:
            raise MXTInputError("overlap_packets must be >= 0 and reorder_window >= 1", keyword="overlap_packets")

    @property
    def none(self) -> bool:
        """No defect at all."""
        return self.loss_rate == self.reorder_rate == self.corrupt_rate == 0.0 and self.overlap_packets == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DownlinkTruth:
    """What :func:`downlink` injected (packet counts; ``corrupted``: packets with a changed byte)."""

    lost: int = 0
    duplicated: int = 0
    moved: int = 0
    corrupted: int = 0
    corrupted_bytes: int = 0
    lost_packets: list[dict[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def downlink(dumps: Mapping[int, Sequence[bytes]], defects: DownlinkDefects,
             rng: np.random.Generator) -> tuple[dict[int, list[bytes]], DownlinkTruth]:  # fmt: skip
    """Deliveries (key: the PASS_ID of the pass) of the dumps through a defective downlink."""
    truth = DownlinkTruth()
    out: dict[int, list[bytes]] = {}
    ids = sorted(dumps)
    for n, dump in enumerate(ids):
        packets = [(dump, i, p) for i, p in enumerate(dumps[dump])]
        if n and defects.overlap_packets:
            prev = ids[n - 1]
            k = min(defects.overlap_packets, len(dumps[prev]))
            start = len(dumps[prev]) - k
            resent = [(prev, start + i, p) for i, p in enumerate(dumps[prev][start:])]
            packets = resent + packets
            truth.duplicated += len(resent)
        if defects.loss_rate:
            lost = rng.random(len(packets)) < defects.loss_rate
            for (d, i, _), x in zip(packets, lost, strict=True):
                if x:
                    truth.lost_packets.append({"dump": d, "index": i})
            truth.lost += int(lost.sum())
            packets = [p for p, x in zip(packets, lost, strict=True) if not x]
        if defects.reorder_rate and packets:
            # Sort keys: position, plus a delay of 1..window for the packets that are held back.
            keys = np.arange(len(packets), dtype=float)
            late = rng.random(len(packets)) < defects.reorder_rate
            keys[late] += rng.integers(1, defects.reorder_window + 1, int(late.sum())) + 0.5
            order = np.argsort(keys, kind="stable")
            truth.moved += int(np.sum(order != np.arange(len(packets))))
            packets = [packets[i] for i in order]
        raw = [p for _, _, p in packets]
        if defects.corrupt_rate and raw:
            sizes = np.array([len(p) for p in raw])
            total = int(sizes.sum())
            n_bad = int(rng.binomial(total, defects.corrupt_rate))
            where = np.unique(rng.choice(total, size=n_bad, replace=False)) if n_bad else np.empty(0, int)
            which = np.searchsorted(np.cumsum(sizes), where, side="right")
            offsets = where - np.r_[0, np.cumsum(sizes)][which]
            flips = rng.integers(1, 256, where.size)  # XOR with a non-zero byte: the value changes
            for pk in np.unique(which):
                b = bytearray(raw[pk])
                for off, f in zip(offsets[which == pk], flips[which == pk], strict=True):
                    b[off] ^= int(f)
                raw[pk] = bytes(b)
            truth.corrupted += int(np.unique(which).size)
            truth.corrupted_bytes += int(where.size)
        out[dump] = raw
    return out, truth
