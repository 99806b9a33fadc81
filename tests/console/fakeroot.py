"""Output roots for the console's tests: generated folders shaped like `mxt run` outputs.

The layout and the files (manifest.json, run_report.json, processing_status.json, an
MXT_SOP_SKY source list, a PNG preview) follow what the pipeline writes, with only the
fields the console reads, so a thousand runs can be made in seconds.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from astropy.io import fits

STATUSES = ("SUCCESS", "SUCCESS", "SUCCESS", "PARTIAL", "NO_DATA")
MODES = ("XBAND-GP", "XBAND-CP")


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A valid RGB PNG (grey gradient), written by hand: no image library needed."""
    raw = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 40 % 256, y * 60 % 256, 128))
                   for y in range(height))  # filter byte 0, then RGB triplets, per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write_srclist(path: Path, sources: list[tuple[int, float, float, float, float]]) -> None:
    """An MXT_SOP_SKY-like file: SRCLIST with SRC_ID, RA, DEC, ERR_R90, DET_ML, RATE."""
    n = len(sources)
    arr = np.array(sources, dtype=float).reshape(n, 5) if n else np.zeros((0, 5))
    cols = [
        fits.Column("SRC_ID", "J", array=arr[:, 0].astype(np.int32)),
        fits.Column("RA", "D", unit="deg", array=arr[:, 1]),
        fits.Column("DEC", "D", unit="deg", array=arr[:, 2]),
        fits.Column("ERR_R90", "E", unit="arcsec", array=arr[:, 3]),
        fits.Column("DET_ML", "E", array=arr[:, 4]),
        fits.Column("RATE", "E", unit="count/s", array=np.full(n, 0.5)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="SRCLIST")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def make_collection(out_dir: Path, *, obs_id: str, counter: int = 1, status: str = "SUCCESS", mode: str = "XBAND-GP",
                    caldb_version: str = "20250615-f166a0", started: str = "2026-01-01T00:00:00Z", total_s: float = 12.5,
                    sources: list[tuple[int, float, float, float, float]] | None = None) -> Path:  # fmt: skip
    """One published collection in ``out_dir`` (and the folder's status/latest records)."""
    pipeline = mode.lower()
    name = f"{pipeline}_{obs_id}_c{caldb_version}_p0.1.0_v{counter:03d}"
    d = out_dir / name
    d.mkdir(parents=True)
    sources = sources if sources is not None else [(1, 150.0 + counter * 1e-4, 2.0, 30.0, 120.0)]
    write_srclist(d / f"mxt_sop_sky_{obs_id}.fits", sources)
    (d / f"mxt_img_{obs_id}.png").write_bytes(tiny_png())
    (d / "run.log").write_text("run log\n")
    bricks = [{"name": "calibrate", "status": "SUCCESS", "elapsed_s": total_s * 0.3, "metrics": {"n_events": 1000}},
              {"name": "detect", "status": "SUCCESS", "elapsed_s": total_s * 0.6, "metrics": {"n_sources": len(sources)}}]  # fmt: skip
    report = {"started": started, "status": status, "bricks": bricks, "versions": {"caldb": caldb_version, "pipeline": "0.1.0"},
              "timing": {"total_s": total_s, "bricks_s": total_s * 0.9},
              "caldb": [{"code": "PSF", "file": "mxt_psf.fits", "extension": 1, "cal_date": "2025-06-15", "sha256": "ab" * 32}]}  # fmt: skip
    (d / "run_report.json").write_text(json.dumps(report))
    files = [{"path": p.name, "role": "product" if p.suffix == ".fits" else "report", "kind": p.suffix.lstrip("."),
              "port": "", "sha256": f"{hash(p.name) & 0xFFFFFFFF:064x}", "size": p.stat().st_size}
             for p in sorted(d.iterdir())]  # fmt: skip
    target = {"obs_id": obs_id, "object": f"field {obs_id}", "mode": mode, "trigger_time": None}
    man = {"collection": name, "counter": counter, "pipeline": pipeline, "pipeline_version": "0.1.0", "status": status,
           "caldb_version": caldb_version, "created": started, "target": target, "files": files, "run_key": "k" * 64,
           "request": {"inputs": {"dataset": str(out_dir / "no-such-dataset")}, "parameters": {}}}  # fmt: skip
    (d / "manifest.json").write_text(json.dumps(man))
    (out_dir / "processing_status.json").write_text(json.dumps({"status": status, "collection": name, "obs_id": obs_id,
                                                                 "pipeline": pipeline, "started": started}))  # fmt: skip
    (out_dir / "latest.json").write_text(json.dumps({pipeline: name}))
    return d


def make_failed_output(out_dir: Path, obs_id: str, status: str = "CALDB_ERROR") -> Path:
    """An output folder whose latest run failed before publishing anything."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reason = {"type": "MXTCaldbNotFound", "message": "no PSF for this date", "file": "caldb.indx"}
    (out_dir / "processing_status.json").write_text(json.dumps({
        "status": status, "collection": None, "obs_id": obs_id, "pipeline": "xband-gp", "started": "2026-01-02T03:04:05Z",
        "reason": reason, "stopped_at": {"brick": "calibrate"}, "versions": {"caldb": None, "pipeline": "0.1.0"}}))  # fmt: skip
    return out_dir


def make_root(root: Path, n_runs: int, seed: int = 0) -> Path:
    """``n_runs`` output folders (one collection each) under ``root``, statuses and modes mixed."""
    rng = np.random.default_rng(seed)
    for i in range(n_runs):
        n_src = int(rng.integers(0, 4))
        srcs = [(k + 1, float(rng.uniform(0, 360)), float(rng.uniform(-80, 80)), float(rng.uniform(10, 90)),
                 float(rng.uniform(9, 500))) for k in range(n_src)]  # fmt: skip
        make_collection(root / f"obs{i:05d}", obs_id=f"OBS{i:05d}", status=STATUSES[i % len(STATUSES)],
                        mode=MODES[i % 2], started=f"2026-02-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                        total_s=float(rng.uniform(5, 300)), sources=srcs)  # fmt: skip
    return root
