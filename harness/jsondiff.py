"""Comparison of JSON products (fast products such as the burst position, summaries).

Documents are walked together; every difference is collected with its path
(``$.position.ra``).  Numbers are compared with ``|a - b| <= atol + rtol * |b|``
(``b`` the reference) using the tolerance of the key (``jsondiff.keys`` of the config,
matched on the full path or the last key, fnmatch patterns) or the default one;
integers and booleans are not interchangeable; keys that change on every run
(``jsondiff.ignore_keys``: creation dates, elapsed times, software versions) are skipped
wherever they occur; strings under ``jsondiff.path_keys`` are file paths compared by
file name only (the folder a run read its inputs from is not part of its result).  The result is a :class:`~harness.fitsdiff.FileDiff` so that JSON
and FITS differences read the same way in the report.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from pathlib import Path
from typing import Any

from harness.config import HarnessConfig, Tolerance, load_config
from harness.fitsdiff import Difference, FileDiff

__all__ = ["diff_json", "diff_documents"]


def _key_tolerance(path: str, key: str, cfg: HarnessConfig) -> Tolerance:
    for pattern, tol in cfg.json_key_tolerances.items():
        if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(key, pattern):
            return tol
    return cfg.json_tolerance


def _ignored(key: str, cfg: HarnessConfig) -> bool:
    return any(fnmatch.fnmatchcase(key, pat) for pat in cfg.json_ignore_keys)


def _is_path_key(key: str, cfg: HarnessConfig) -> bool:
    return any(fnmatch.fnmatchcase(key, pat) for pat in cfg.json_path_keys)


def _file_name(v: str) -> str:
    return v.replace("\\", "/").rstrip("/").rpartition("/")[2]


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def diff_documents(test: Any, ref: Any, cfg: HarnessConfig, path: str = "$", key: str = "") -> list[Difference]:
    """Every difference between two decoded JSON documents."""
    out: list[Difference] = []
    if isinstance(ref, dict) and isinstance(test, dict):
        for k in ref:
            if _ignored(k, cfg):
                continue
            if k not in test:
                out.append(Difference("json", "", f"{path}.{k}", f"missing (reference {_short(ref[k])})"))
            else:
                out += diff_documents(test[k], ref[k], cfg, f"{path}.{k}", k)
        for k in test:
            if k not in ref and not _ignored(k, cfg):
                out.append(Difference("json", "", f"{path}.{k}", f"not in the reference (value {_short(test[k])})"))
        return out
    if isinstance(ref, list) and isinstance(test, list):
        if len(ref) != len(test):
            out.append(Difference("json", "", path, f"{len(test)} items vs {len(ref)} in the reference"))
            return out
        for i, (a, b) in enumerate(zip(test, ref)):
            out += diff_documents(a, b, cfg, f"{path}[{i}]", key)
        return out
    num_a = isinstance(test, (int, float)) and not isinstance(test, bool)
    num_b = isinstance(ref, (int, float)) and not isinstance(ref, bool)
    if num_a and num_b:
        if isinstance(test, int) and isinstance(ref, int):
            if test != ref:
                out.append(Difference("json", "", path, f"{test} vs reference {ref}"))
            return out
        a, b = float(test), float(ref)
        if math.isnan(a) and math.isnan(b):
            return out
        tol = _key_tolerance(path, key, cfg)
        if not abs(a - b) <= tol.atol + tol.rtol * abs(b):
            out.append(Difference("json", "", path, f"{a!r} vs reference {b!r} (|diff| {abs(a - b):.6g} beyond {tol})"))
        return out
    if isinstance(test, str) and isinstance(ref, str) and key and _is_path_key(key, cfg):
        if _file_name(test) != _file_name(ref):
            out.append(Difference("json", "", path, f"file {_short(_file_name(test))} vs reference {_short(_file_name(ref))}"))
        return out
    if type(test) is not type(ref) or test != ref:
        out.append(Difference("json", "", path, f"{_short(test)} vs reference {_short(ref)}"))
    return out


def diff_json(
    test: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    config: HarnessConfig | None = None,
) -> FileDiff:
    """Compare a JSON file with its reference (an unreadable file is one difference)."""
    cfg = config or load_config()
    result = FileDiff(str(test), str(reference), content="JSON")
    docs = []
    for which, p in (("test", test), ("reference", reference)):
        try:
            docs.append(json.loads(Path(p).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            result.differences.append(Difference("file", "", "", f"{which} file unreadable: {exc}"))
    if len(docs) == 2:
        result.differences = diff_documents(docs[0], docs[1], cfg)
        result.n_hdus_compared = 1
    return result
