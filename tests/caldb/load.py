"""Load test of the CALDB service: concurrent search + download while uploads go on.

The service runs as ``mxt caldb serve`` in its own process (as in operations), on a
catalogue of ``--datasets`` upload-class files; ``--clients`` asyncio clients each loop
on search + download of a random code name for ``--seconds``, while one more client
uploads new files.  An idle baseline (one client, no upload) is measured first, in
the same run.  Prints one JSON object: per phase the request count, the status codes,
p50/p90/p99/max latency in ms, and under ``cpu`` the CPU seconds used meanwhile by
the service process (``/proc/<pid>/stat``) and by this generator, the service CPU per
request and the request rate.  ``--cost N`` first measures the service CPU per
request of each endpoint (N sequential searches, N downloads, N/10 uploads).

The clients use :class:`HttpConnection`, one keep-alive HTTP/1.1 connection each,
not ``httpx``: the generator shares the cores with the service, and ``httpx`` cost
more CPU per request than the service itself.

Full size (the documented acceptance run)::

    PYTHONPATH=. python -m tests.caldb.load --clients 50 --datasets 250 --seconds 30

``tests/caldb/test_load.py`` runs a small instance in the unit lane and this full
size under ``MXT_LOAD_TEST=full``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

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

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the service process has used so far (/proc)."""
        return _proc_cpu_s(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process in seconds, from ``/proc/<pid>/stat`` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: the load generator's client.

    Much lighter than ``httpx`` (about 0.1 ms of CPU per request instead of about
    1 ms, measured with ``generator_cpu_s``): the generator runs on the same cores as
    the service, and a heavy client would measure itself.  It speaks only what the
    service answers (``Content-Length`` bodies, no chunked encoding) and raises on
    anything else.
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.timeout = timeout
        self._prefix = f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> HttpConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._reader = self._writer = None

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; return the status, the headers (lower-case names) and the body."""
        async with asyncio.timeout(self.timeout):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            length = f"Content-Length: {len(body)}\r\n" if body or method in ("PUT", "POST") else ""
            self._writer.write(f"{method} {target} HTTP/1.1\r\n{self._prefix}{extra}{length}\r\n".encode() + body)
            head = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(head[0].split(" ", 2)[1])
            answer = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
            if "content-length" in answer:
                data = await self._reader.readexactly(int(answer["content-length"]))
            elif status in (204, 304) or method == "HEAD":
                data = b""
            else:
                raise RuntimeError(f"{method} {target}: answer without Content-Length ({answer})")
            if answer.get("connection", "").lower() == "close":
                await self.close()
            return status, answer, data


def _search_target(code: str) -> str:
    return "/api/v1/search?" + urlencode({"instrume": "MXT", "codename": code})


async def _client_loop(url: str, n_codes: int, until: float, seed: int, lat: list, codes: dict, errors: list) -> None:
    rng = random.Random(seed)
    async with HttpConnection(url) as c:
        while time.monotonic() < until:
            i = rng.randrange(n_codes)
            t0 = time.perf_counter()
            status, _, body = await c.request("GET", _search_target(code_name(i)))
            lat.append(time.perf_counter() - t0)
            codes[status] = codes.get(status, 0) + 1
            rows = json.loads(body).get("rows") if status == 200 else None
            if not rows:
                errors.append(f"search {code_name(i)}: {status} {body[:200]!r}")
                continue
            row = rows[0]
            t0 = time.perf_counter()
            status, headers, data = await c.request("GET", row["download"])
            lat.append(time.perf_counter() - t0)
            codes[status] = codes.get(status, 0) + 1
            if status != 200 or headers.get("x-checksum-sha256") != row["sha256"] or len(data) != row["size"]:
                errors.append(f"download {row['download']}: {status}")


async def _uploader(url: str, start: int, until: float, lat: list, codes: dict, errors: list) -> int:
    n = 0
    async with HttpConnection(url, timeout=60) as c:
        while time.monotonic() < until:
            name = yaml_name(start + n)
            t0 = time.perf_counter()
            status, _, body = await c.request("PUT", f"/api/v1/upload/MXT/{name}", f"threshold_adu: {n}\n".encode())
            lat.append(time.perf_counter() - t0)
            codes[status] = codes.get(status, 0) + 1
            if status != 201:
                errors.append(f"upload {name}: {status} {body[:200]!r}")
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


async def _cost(url: str, pid: int, n_codes: int, n: int, upload_start: int) -> dict[str, Any]:
    """Service CPU per request of each endpoint: ``n`` sequential requests from one client.

    CPU time of the service process (user + system, ``/proc``), not wall time: on a
    shared machine it hardly depends on what else runs.
    """
    rng = random.Random(1)
    out: dict[str, Any] = {}
    async with HttpConnection(url) as c:
        ids = []
        for i in range(min(n, n_codes)):
            _, _, body = await c.request("GET", _search_target(code_name(i)))
            ids.append(json.loads(body)["rows"][0]["download"])

        def search(k: int):
            return c.request("GET", _search_target(code_name(rng.randrange(n_codes))))

        def download(k: int):
            return c.request("GET", ids[k % len(ids)])

        def upload(k: int):
            return c.request("PUT", f"/api/v1/upload/MXT/{yaml_name(upload_start + k)}", f"threshold_adu: {k}\n".encode())

        for label, call, count in (("search", search, n), ("download", download, n), ("upload", upload, max(1, n // 10))):
            c0 = _proc_cpu_s(pid)
            w0 = time.perf_counter()
            for k in range(count):
                status, _, body = await call(k)
                if status not in (200, 201):
                    raise RuntimeError(f"{label}: {status} {body[:200]!r}")
            out[label] = {
                "requests": count,
                "service_cpu_ms_per_request": round(1e3 * (_proc_cpu_s(pid) - c0) / count, 3),
                "wall_ms_per_request": round(1e3 * (time.perf_counter() - w0) / count, 3),
            }
    return out


def _measured(server: Server, coro) -> dict[str, Any]:
    """Run a phase; add the CPU the service and this generator used meanwhile."""
    s0, g0, w0 = server.cpu_s(), time.process_time(), time.perf_counter()
    out = asyncio.run(coro)
    wall = time.perf_counter() - w0
    cpu = server.cpu_s() - s0
    n = out["read"]["requests"] + out.get("uploads", {}).get("requests", 0)
    out["cpu"] = {
        "wall_s": round(wall, 2),
        "service_cpu_s": round(cpu, 2),
        "service_cpu_ms_per_request": round(1e3 * cpu / max(n, 1), 3),
        "service_cores_used": round(cpu / wall, 2),
        "generator_cpu_s": round(time.process_time() - g0, 2),
        "requests_per_s": round(n / wall, 1),
    }
    return out


def run_load(
    workdir: Path, *, clients: int, datasets: int, seconds: float, idle_seconds: float, cost_requests: int = 0
) -> dict[str, Any]:
    """Build the catalogue, start the service, measure idle then loaded; return the figures.

    ``cost_requests`` > 0 first measures the service CPU per request of each endpoint
    (sequential requests; its uploads are added to the catalogue before the idle phase).
    """
    root = workdir / "caldb"
    t0 = time.perf_counter()
    build_catalogue(root, datasets)
    build_s = time.perf_counter() - t0
    server = Server(root, workdir / "server.log")
    res: dict[str, Any] = {"datasets": datasets, "catalogue_build_s": round(build_s, 1), "cpus": os.cpu_count()}
    try:
        # Warm-up, not measured: the first requests load the service's code and index.
        asyncio.run(_phase(server.url, datasets, 2, 1.0, False, 0))
        upload_start = datasets
        if cost_requests:
            res["cost"] = asyncio.run(_cost(server.url, server.proc.pid, datasets, cost_requests, upload_start))
            upload_start += max(1, cost_requests // 10)
        res["idle"] = _measured(server, _phase(server.url, datasets, 1, idle_seconds, False, 0))
        res["load"] = _measured(server, _phase(server.url, datasets, clients, seconds, True, upload_start))
    finally:
        server.stop()
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--datasets", type=int, default=250)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--idle-seconds", type=float, default=5.0)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--cost", type=int, default=0, metavar="N",
                   help="first measure the service CPU per request of each endpoint over N sequential requests")
    a = p.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="caldb-load-") as tmp:
        res = run_load(a.workdir or Path(tmp), clients=a.clients, datasets=a.datasets, seconds=a.seconds,
                       idle_seconds=a.idle_seconds, cost_requests=a.cost)  # fmt: skip
    print(json.dumps(res, indent=1))
    five = sum(v for k, v in res["load"]["read"]["status"].items() if k.startswith("5"))
    return 1 if five or res["load"]["n_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
