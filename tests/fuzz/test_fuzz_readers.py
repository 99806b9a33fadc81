"""Corrupted FITS files through every reader and ``mxt validate``.

For each case the acceptable outcomes are: the reader refuses with an
:class:`~mxt_pipeline.errors.MXTError` whose message names the file, or it accepts a
file that ``validate_file`` passes (the documented success).  A traceback, or a file
accepted by a reader and refused by the schemas, fails the test.  ``validate_file`` and
``mxt validate`` must answer for any file, and agree with each other.

The number of cases follows the hypothesis profile: ``ci`` runs a sample on every
commit; ``HYPOTHESIS_PROFILE=fuzz`` (``tox -e fuzz``) runs >= 1e4 cases in all.  The
``@example`` cases are the regression corpus: corruptions that were once accepted
silently or crashed.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mxt_pipeline.cli.main import main
from mxt_pipeline.errors import MXTError
from mxt_pipeline.io import read_product, validate_file
from mxt_pipeline.io.lightcurve_product import read_light_curve
from mxt_pipeline.io.products import (
    read_angles,
    read_attitude,
    read_events,
    read_raw_hits,
    read_saa,
)

from .conftest import SEEDS
from .mutations import Mutation, apply_mutation, mutations

READERS = {
    "l1": read_raw_hits,
    "att": read_attitude,
    "ang": read_angles,
    "saa": read_saa,
    "l2": read_events,
    "srclist": lambda p: read_product(p, "MXT_SOP_SKY"),
    "lc": read_light_curve,
}

_counter = itertools.count()


def check_reader(kind: str, path: Path) -> str:
    """Run the reader of ``kind`` and the validators on ``path``; return the outcome."""
    violations = validate_file(path)  # never raises, whatever the file
    assert isinstance(violations, list)
    try:
        READERS[kind](path)
    except MXTError as exc:
        text = str(exc)
        assert path.name in text, f"the message does not name the file: {text}"
        return "refused"
    assert violations == [], f"the reader accepted a file the schemas refuse: {violations}"
    return "accepted"


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_seeds_are_valid(kind):
    assert check_reader(kind, SEEDS[kind]) == "accepted"


# The regression corpus: each was accepted silently (or crashed) before the readers
# were hardened.
CORPUS: list[tuple[str, Mutation, str]] = [
    ("l1", ("retype", "EVENTS", "TIME", "E"), "refused"),  # 32-bit float times: 16-32 s resolution
    ("l2", ("retype", "EVENTS", "TIME", "E"), "refused"),
    ("att", ("retype", "ATTITUDE", "TIME", "E"), "refused"),
    ("lc", ("retype", "RATE", "TIME", "E"), "refused"),
    ("l1", ("keyword", 0, "TSTART", "abc"), "refused"),  # a string where seconds are expected
    ("l1", ("keyword", 1, "TSTOP", "abc"), "refused"),
    ("att", ("rows", "ATTITUDE", "empty"), "refused"),  # a 0-row attitude crashed validate
    ("l1", ("value", "GTI", "START", 0, 1e300), "refused"),  # no event inside its own GTI
    ("l2", ("rows", "EVENTS", "empty"), "accepted"),  # empty, valid types: a legal product
    ("saa", ("rows", "SAA", "empty"), "accepted"),
]


@pytest.mark.parametrize(("kind", "mutation", "expected"), CORPUS,
                         ids=[f"{k}-{m[0]}-{i}" for i, (k, m, _) in enumerate(CORPUS)])  # fmt: skip
def test_regression_corpus(tmp_path, kind, mutation, expected):
    path = apply_mutation(SEEDS[kind], tmp_path / f"{kind}.fits", mutation)
    assert check_reader(kind, path) == expected, mutation


@pytest.mark.parametrize("kind", sorted(SEEDS))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(mutation=mutations())
@example(mutation=("retype", "EVENTS", "TIME", "E"))
@example(mutation=("keyword", 0, "TSTART", "abc"))
@example(mutation=("rows", 1, "empty"))
def test_corrupted_files_through_every_reader(tmp_path_factory, kind, mutation):
    folder = tmp_path_factory.getbasetemp() / "fuzz_readers"
    folder.mkdir(exist_ok=True)
    path = apply_mutation(SEEDS[kind], folder / f"{kind}_{next(_counter)}.fits", mutation)
    try:
        check_reader(kind, path)
    finally:
        path.unlink(missing_ok=True)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(mutation=mutations(), kind=st.sampled_from(sorted(SEEDS)))
def test_mxt_validate_answers_for_any_file(tmp_path_factory, capsys, mutation, kind):
    folder = tmp_path_factory.getbasetemp() / "fuzz_validate"
    folder.mkdir(exist_ok=True)
    path = apply_mutation(SEEDS[kind], folder / f"{kind}_{next(_counter)}.fits", mutation)
    try:
        rc = main(["validate", str(path)])
        capsys.readouterr()
        assert rc == (0 if validate_file(path) == [] else 1)
    finally:
        path.unlink(missing_ok=True)
