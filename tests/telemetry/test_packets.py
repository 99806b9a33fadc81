"""Packets: CRC against an independent implementation, CUC, header fields, L1 -> packets -> L1."""

from __future__ import annotations

import binascii
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.telemetry.packets import (
    APID_ATTITUDE,
    APID_HOUSEKEEPING,
    APID_SCIENCE,
    MAX_HITS_PER_PACKET,
    build_packet,
    crc16_ccitt,
    cuc_decode,
    cuc_encode,
    parse_packet,
    parse_science,
)
from mxt_pipeline.telemetry.stream import decode_deliveries, deliveries_from_mapping, encode_dumps
from tests.telemetry.helpers import assert_same_attitude, assert_same_pass
from tests.telemetry.strategies import attitudes, raw_passes


@given(st.binary(max_size=300))
def test_crc_is_ccitt_false(data):
    # binascii.crc_hqx with initial value 0xFFFF is CRC-16/CCITT-FALSE, written independently.
    assert crc16_ccitt(data) == binascii.crc_hqx(data, 0xFFFF)


def test_crc_check_value():
    assert crc16_ccitt(b"123456789") == 0x29B1  # the catalogued check value of CRC-16/CCITT-FALSE


@given(st.floats(0.0, 2.0**32 - 1, allow_nan=False))
def test_cuc_tags_the_time_to_a_fine_unit_without_overshooting(t):
    coarse, fine = cuc_encode(t)
    assert 0 <= fine < 65536
    back = cuc_decode(coarse, fine)
    assert back <= t < back + 2.0**-16 + 1e-9 * max(1.0, t) * 2**-20


@pytest.mark.parametrize("bad", [-1.0, 2.0**32, float("nan")])
def test_cuc_out_of_range(bad):
    with pytest.raises(MXTFormatError, match="CUC"):
        cuc_encode(bad)


@given(st.sampled_from([APID_SCIENCE, APID_ATTITUDE, APID_HOUSEKEEPING]), st.integers(0, 10**6),
       st.floats(0, 2.0**32 - 1), st.integers(0, 65535), st.binary(max_size=200))
def test_header_fields(apid, seq, t, dump, data):
    raw = build_packet(apid, seq, t, dump, data)
    # Primary header decoded by hand from the CCSDS 133.0-B layout.
    w0, w1, length = struct.unpack(">HHH", raw[:6])
    assert w0 >> 13 == 0 and (w0 >> 12) & 1 == 0 and (w0 >> 11) & 1 == 1 and w0 & 0x7FF == apid
    assert w1 >> 14 == 0b11 and w1 & 0x3FFF == seq % 16384
    assert length == len(raw) - 7
    p = parse_packet(raw)
    assert (p.apid, p.seq_count, p.dump, p.data) == (apid, seq % 16384, dump, data)
    assert (p.cuc_coarse, p.cuc_fine) == cuc_encode(t)


@given(st.binary(min_size=0, max_size=60), st.data())
def test_any_single_byte_change_is_detected(data, draw):
    raw = bytearray(build_packet(APID_SCIENCE, 3, 10.0, 1, data))
    i = draw.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= draw.draw(st.integers(1, 255))
    with pytest.raises(MXTFormatError):
        parse_packet(bytes(raw))


def test_truncated_packet_is_rejected():
    raw = build_packet(APID_SCIENCE, 3, 10.0, 1, b"x" * 20)
    with pytest.raises(MXTFormatError, match="PEC|length|shorter"):
        parse_packet(raw[:-5])


@given(st.lists(raw_passes(), min_size=1, max_size=3), attitudes())
def test_l1_to_packets_to_l1_is_identical(passes, att):
    for i, p in enumerate(passes):  # one observation: shared OBS_ID and frame time, distinct passes
        p.meta.update(OBS_ID=passes[0].meta["OBS_ID"], FRAMETIM=passes[0].meta["FRAMETIM"], PASS_ID=i + 1)
    dumps = encode_dumps(passes, att)
    out = decode_deliveries(deliveries_from_mapping(dumps))
    assert len(out.passes) == len(passes)
    for a, b in zip(passes, out.passes, strict=True):
        assert_same_pass(a, b)
    assert_same_attitude(att, out.attitude)
    r = out.report
    assert (r.missing, r.duplicated, r.corrupted, r.reordered, r.lost_intervals) == (0, 0, 0, 0, [])
    assert r.packets_read == r.kept == r.expected == sum(len(v) for v in dumps.values())


def test_big_frame_is_cut_into_chunks():
    from astropy.table import Table

    from mxt_pipeline.datamodel import GTI, RawHits

    n = 2 * MAX_HITS_PER_PACKET + 5
    t = Table({"TIME": np.full(n, 5.0), "FRAME": np.full(n, 7, np.int32), "RAWY": np.zeros(n, np.int16),
               "RAWZ": np.zeros(n, np.int16), "PHA": np.arange(n, dtype=np.int16)})
    hits = RawHits(t, gti=GTI([4.0], [6.0]), meta={"OBS_ID": "X", "PASS_ID": 1, "STATION": "S"})
    sci = [parse_science(parse_packet(p).data) for p in encode_dumps([hits])[1][1:-1]]
    assert [(s.chunk, s.n_chunks, s.hits.size) for s in sci] == [(0, 3, 1024), (1, 3, 1024), (2, 3, 5)]


def test_values_outside_the_packet_fields_are_refused():
    from astropy.table import Table

    from mxt_pipeline.datamodel import GTI, RawHits

    t = Table({"TIME": [1.0], "FRAME": np.array([1], np.int32), "RAWY": np.array([-1], np.int16),
               "RAWZ": np.array([0], np.int16), "PHA": np.array([0], np.int16)})
    hits = RawHits(t, gti=GTI([0.0], [2.0]), meta={"OBS_ID": "X", "PASS_ID": 1, "STATION": "S"})
    with pytest.raises(MXTInputError, match="RAWY"):
        encode_dumps([hits])
