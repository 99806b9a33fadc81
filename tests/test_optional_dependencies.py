"""Optional dependencies: the core works without them, and a missing extra is named.

Each check runs in a fresh interpreter in which the optional modules are made
unimportable (``sys.modules[name] = None`` makes ``import name`` raise ImportError), so
the package is seen exactly as on a machine where the extra was never installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mxt_pipeline.errors import MXTDependencyError
from mxt_pipeline.extras import EXTRAS, require


def _run_without(modules: tuple[str, ...], body: str) -> subprocess.CompletedProcess:
    code = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)


# ---- numba ("fast") -----------------------------------------------------------------------------

_NO_NUMBA_BODY = """
    import json
    import numpy as np
    from mxt_pipeline.calib import _kernels
    from mxt_pipeline.detect import _newton, tabulated  # noqa: F401  (imports without numba)
    from mxt_pipeline.detect.likelihood import solve_linear_poisson
    from mxt_pipeline.lightcurve import _fpop
    from mxt_pipeline.lightcurve.bayesian_blocks import bayesian_blocks
    assert not (_kernels.HAVE_NUMBA or _newton.HAVE_NUMBA or _fpop.HAVE_NUMBA)
    rng = np.random.default_rng(7)
    t = np.sort(np.r_[rng.uniform(0, 1000, 150), rng.uniform(400, 430, 60)])
    edges = bayesian_blocks(t, p0=0.05)
    a = rng.uniform(0.1, 1.0, (3, 40))
    c = rng.integers(1, 20, 40).astype(float)
    x, cstat, _, ok = solve_linear_poisson(a, a.sum(axis=1) * 1.2, c, np.ones(3), np.ones(3, bool))
    assert "numba" not in sys.modules or sys.modules["numba"] is None
    print(json.dumps({"edges": edges.tolist(), "x": x.tolist(), "cstat": cstat, "ok": ok}))
"""


def test_the_pipeline_kernels_run_without_numba_and_agree_with_it():
    out = _run_without(("numba",), _NO_NUMBA_BODY)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # The same computation in this interpreter (numba when installed).
    from mxt_pipeline.detect.likelihood import solve_linear_poisson
    from mxt_pipeline.lightcurve.bayesian_blocks import bayesian_blocks

    rng = np.random.default_rng(7)
    t = np.sort(np.r_[rng.uniform(0, 1000, 150), rng.uniform(400, 430, 60)])
    np.testing.assert_allclose(res["edges"], bayesian_blocks(t, p0=0.05), rtol=0, atol=1e-9)
    a = rng.uniform(0.1, 1.0, (3, 40))
    c = rng.integers(1, 20, 40).astype(float)
    x, cstat, _, ok = solve_linear_poisson(a, a.sum(axis=1) * 1.2, c, np.ones(3), np.ones(3, bool))
    assert res["ok"] and ok
    np.testing.assert_allclose(res["x"], x, rtol=1e-7)
    assert res["cstat"] == pytest.approx(cstat, rel=1e-10)


# ---- Starlette / uvicorn ("service") ------------------------------------------------------------


def test_core_and_caldb_client_import_without_the_service_extra():
    out = _run_without(("starlette", "uvicorn"), """
        import mxt_pipeline.caldb, mxt_pipeline.caldb.service, mxt_pipeline.pipelines, mxt_pipeline.cli.caldb
        from mxt_pipeline.caldb import CaDBIO  # noqa: F401
    """)  # fmt: skip
    assert out.returncode == 0, out.stderr


def test_caldb_serve_names_the_missing_extra(tmp_path):
    out = _run_without(("starlette", "uvicorn"), f"""
        from mxt_pipeline.cli.main import main
        raise SystemExit(main(["caldb", "serve", "--root", {str(tmp_path)!r}, "--allow-anonymous"]))
    """)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    message = out.stdout + out.stderr
    assert "mxt caldb serve needs starlette" in message
    assert "pip install 'mxt-pipeline[service]'" in message
    assert "Traceback" not in message


def test_the_service_factory_names_the_missing_extra():
    out = _run_without(("starlette", "uvicorn"), """
        import mxt_pipeline.caldb.service as service
        from mxt_pipeline.errors import MXTDependencyError
        try:
            service.create_app
        except MXTDependencyError as exc:
            assert "mxt-pipeline[service]" in str(exc), exc
        else:
            raise AssertionError("no error without starlette")
    """)  # fmt: skip
    assert out.returncode == 0, out.stderr


# ---- iminuit ("validation") ---------------------------------------------------------------------


def test_minuit_reference_names_the_missing_extra():
    out = _run_without(("iminuit",), """
        from mxt_pipeline.detect.reference import iminuit_fit
        from mxt_pipeline.errors import MXTDependencyError
        try:
            iminuit_fit(None, [0.0], [0.0], None, [1.0])
        except MXTDependencyError as exc:
            assert "mxt-pipeline[validation]" in str(exc), exc
        else:
            raise AssertionError("no error without iminuit")
    """)  # fmt: skip
    assert out.returncode == 0, out.stderr


# ---- the helper itself ----------------------------------------------------------------------------


def test_require_returns_the_module_or_names_the_extra(monkeypatch):
    if _installed("numba"):
        assert require("numba", "fast", "x") is sys.modules["numba"]
    monkeypatch.setitem(sys.modules, "iminuit", None)
    with pytest.raises(MXTDependencyError, match=r"the check needs iminuit.*mxt-pipeline\[validation\]"):
        require("iminuit", "validation", "the check")
    with pytest.raises(ValueError):
        require("iminuit", "service", "a typo in the extra")


def test_every_extra_is_declared_in_pyproject():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    declared = project["optional-dependencies"]
    core = " ".join(project["dependencies"])
    for extra, modules in EXTRAS.items():
        for module in modules:
            assert any(d.startswith(module) for d in declared[extra]), (extra, module)
            assert module not in core, f"{module} is optional but listed in the core dependencies"


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
