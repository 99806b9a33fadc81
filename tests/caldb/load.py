"""Load test of the CALDB service: concurrent search + download while uploads go on.

The service runs as ``mxt caldb serve`` in its own process (as in operations), on a
catalogue of ``--datasets`` upload-class files; ``--clients`` asyncio clients each loop
on search + download of a random code name for ``--seconds``, while one more client
uploads new files.  An idle baseline (one client, no upload) is measured first, in
the same run.  Prints one JSON object: per phase the request count, the status codes,
p50/p90/p99/max latency in ms.

Full size (the documented acceptance run)::

    PYTHONPATH=. python -m tests.caldb.load --clients 50 --datasets 250 --seconds 30

``tests/caldb/test_load.py`` runs a small instance in the unit lane and this full
size under ``MXT_LOAD_TEST=full``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

TOKEN = "load-test-token-5b1e"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def code_name(i: int) -> str:
    return f"LOAD{i:04d}"


def yaml_name(i: int, version: int = 1) -> str:
    return f"MXT_{code_name(i)}_20250101T000000_v{version:02d}.yaml"


def build_catalogue(root: Path, n: int) -> None:
    """A CALDB root holding ``n`` upload-class datasets (one code name each)."""
    from mxt_pipeline.caldb.service.store import CaldbStore

    src = root.parent / "load_src"
    src.mkdir(parents=True, exist_ok=True)
    store = CaldbStore(root)
    for i in range(n):
        f = src / yaml_name(i)
        f.write_text(f"threshold_adu: {100 + i}\nsplit_adu: 30\n")
        store.ingest_path("MXT", f.name, f)


class Server:
    """``mxt caldb serve`` in a child process."""

    def __init__(self, root: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tokens = root.parent / "tokens.txt"
        tokens.write_text(TOKEN + "\n")
        tokens.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MXT_")}
        self._log = open(log, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mxt_pipeline.cli.main", "caldb", "serve", "--root", str(root),
             "--host", "127.0.0.1", "--port", str(self.port), "--token-file", str(tokens), "--log-level", "warning"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the service did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def _summary(lat: list[float], codes: dict[int, int]) -> dict[str, Any]:
    a = np.asarray(lat) * 1e3 if lat else np.zeros(1)
    return {
        "requests": len(lat),
        "status": {str(k): v for k, v in sorted(codes.items())},
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p90_ms": round(float(np.percentile(a, 90)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
    }


async def _client_loop(url: str, n_codes: int, until: float, seed: int, lat: list, codes: dict, errors: list) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as c:
        while time.monotonic() < until:
            i = rng.randrange(n_codes)
            t0 = time.perf_counter()
            r = await c.get("/api/v1/search", params={"instrume": "MXT", "codename": code_name(i)})
            lat.append(time.perf_counter() - t0)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code != 200 or not r.json()["rows"]:
                errors.append(f"search {code_name(i)}: {r.status_code} {r.text[:200]}")
                continue
            row = r.json()["rows"][0]
            t0 = time.perf_counter()
            d = await c.get(row["download"])
            lat.append(time.perf_counter() - t0)
            codes[d.status_code] = codes.get(d.status_code, 0) + 1
            if d.status_code != 200 or d.headers.get("X-Checksum-SHA256") != row["sha256"]:
                errors.append(f"download {row['download']}: {d.status_code}")


async def _uploader(url: str, start: int, until: float, lat: list, codes: dict, errors: list) -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    n = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as c:
        while time.monotonic() < until:
            name = yaml_name(start + n)
            t0 = time.perf_counter()
            r = await c.put(f"/api/v1/upload/MXT/{name}", content=f"threshold_adu: {n}\n".encode())
            lat.append(time.perf_counter() - t0)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code != 201:
                errors.append(f"upload {name}: {r.status_code} {r.text[:200]}")
            n += 1
    return n


async def _phase(url: str, n_codes: int, clients: int, seconds: float, upload: bool, upload_start: int):
    until = time.monotonic() + seconds
    lat: list[float] = []
    codes: dict[int, int] = {}
    up_lat: list[float] = []
    up_codes: dict[int, int] = {}
    errors: list[str] = []
    tasks = [_client_loop(url, n_codes, until, seed, lat, codes, errors) for seed in range(clients)]
    if upload:
        tasks.append(_uploader(url, upload_start, until, up_lat, up_codes, errors))
    results = await asyncio.gather(*tasks)
    out = {"clients": clients, "read": _summary(lat, codes), "errors": errors[:20], "n_errors": len(errors)}
    if upload:
        out["uploads"] = {**_summary(up_lat, up_codes), "files": results[-1]}
    return out


def run_load(workdir: Path, *, clients: int, datasets: int, seconds: float, idle_seconds: float) -> dict[str, Any]:
    """Build the catalogue, start the service, measure idle then loaded; return the figures."""
    root = workdir / "caldb"
    t0 = time.perf_counter()
    build_catalogue(root, datasets)
    build_s = time.perf_counter() - t0
    server = Server(root, workdir / "server.log")
    try:
        # Warm-up, not measured: the first requests load the service's code and index.
        asyncio.run(_phase(server.url, datasets, 2, 1.0, False, 0))
        idle = asyncio.run(_phase(server.url, datasets, 1, idle_seconds, False, 0))
        loaded = asyncio.run(_phase(server.url, datasets, clients, seconds, True, datasets))
    finally:
        server.stop()
    return {"datasets": datasets, "catalogue_build_s": round(build_s, 1), "idle": idle, "load": loaded}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--datasets", type=int, default=250)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--idle-seconds", type=float, default=5.0)
    p.add_argument("--workdir", type=Path, default=None)
    a = p.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="caldb-load-") as tmp:
        res = run_load(a.workdir or Path(tmp), clients=a.clients, datasets=a.datasets, seconds=a.seconds,
                       idle_seconds=a.idle_seconds)  # fmt: skip
    print(json.dumps(res, indent=1))
    five = sum(v for k, v in res["load"]["read"]["status"].items() if k.startswith("5"))
    return 1 if five or res["load"]["n_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
