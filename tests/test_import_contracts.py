"""The import contracts (``.importlinter``, ``docs/architecture.md``) hold, and they bite.

``lint-imports`` runs on the tree (it must pass), then on a copy of the sources with one
upward import added (it must fail, naming the import).  The copy holds only the Python
sources, so the run is quick and never touches the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / ".importlinter"
LINT = shutil.which("lint-imports")

pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter not installed (tox -e lint installs it)")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT, "--config", str(root / ".importlinter"), "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _copy_sources(dest: Path) -> Path:
    for pkg in ("mxt_pipeline", "harness"):
        shutil.copytree(REPO / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"),
                        dirs_exist_ok=False)  # fmt: skip
    shutil.copy(CONFIG, dest / ".importlinter")
    return dest


def test_contracts_hold_on_the_tree(tmp_path):
    out = _lint(_copy_sources(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "message"),
    [
        # A science package reaching up to the pipelines.
        ("mxt_pipeline/detect/bands.py", "from mxt_pipeline.pipelines import registry",
         "mxt_pipeline.detect is not allowed to import mxt_pipeline.pipelines"),
        # The ground floor reaching up to a science package.
        ("mxt_pipeline/geometry.py", "from mxt_pipeline.calib import energy",
         "mxt_pipeline.geometry is not allowed to import mxt_pipeline.calib"),
        # A science package opening files through the I/O layer.
        ("mxt_pipeline/lightcurve/binning.py", "from mxt_pipeline.io.products import read_events",
         "mxt_pipeline.lightcurve is not allowed to import mxt_pipeline.io.products"),
        # Two science packages that must stay independent.
        ("mxt_pipeline/simulate/optics.py", "from mxt_pipeline.detect import bands",
         "mxt_pipeline.simulate is not allowed to import mxt_pipeline.detect"),
        # A science package calling a service client directly.
        ("mxt_pipeline/calib/energy.py", "import httpx",
         "mxt_pipeline.calib is not allowed to import httpx"),
    ],
)
def test_an_upward_import_breaks_the_contracts(tmp_path, module, bad_import, message):
    root = _copy_sources(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{bad_import}  # deliberately wrong\n")
    out = _lint(root)
    assert out.returncode == 1, out.stdout + out.stderr
    assert message in " ".join(out.stdout.split()), out.stdout


def test_the_contracts_name_every_layer_of_the_architecture_page():
    """docs/architecture.md and the contracts list the same packages."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    config = CONFIG.read_text()
    for name in ("mxt_pipeline.cli", "mxt_pipeline.campaign", "mxt_pipeline.pipelines", "mxt_pipeline.services",
                 "mxt_pipeline.caldb", "mxt_pipeline.calib", "mxt_pipeline.detect", "mxt_pipeline.lightcurve",
                 "mxt_pipeline.simulate", "mxt_pipeline.datamodel", "mxt_pipeline.geometry",
                 "mxt_pipeline.io.formats", "mxt_pipeline.constants", "mxt_pipeline.errors"):  # fmt: skip
        assert name in config, name
        assert f"`{name.removeprefix('mxt_pipeline.')}" in doc, name


def test_lint_runs_in_the_lint_environment():
    tox = (REPO / "tox.ini").read_text()
    section = tox.split("[testenv:lint]", 1)[1]
    assert "import-linter" in section and "lint-imports" in section
