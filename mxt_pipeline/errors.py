"""The exception hierarchy of the MXT pipeline.

Every error the package raises on purpose derives from :class:`MXTError`, so a caller
(the scheduler wrapper, the harness, the CLI) can catch one type and still tell the
kinds apart.  Each error carries the *location* of the problem (file, HDU, column or
keyword) so that its message points at what to fix.

The tree is deliberately small::

    MXTError
    +-- MXTFormatError          a file or table does not follow its documented format
    |   +-- MXTSchemaError      schema violations found by validation (lists them all)
    +-- MXTInputError           input data are legal but unusable (empty, NaN, inconsistent)
    +-- MXTCalibrationError     a calibration file is missing a value or out of range
    +-- MXTCaldbError           CALDB selection or access failed
    |   +-- MXTCaldbNotFound        nothing matches the query
    |   +-- MXTCaldbAmbiguous       several files match where one is needed
    |   +-- MXTServiceError         a remote service answered an error
    |       +-- MXTAuthError            401/403: bad or missing token
    |       +-- MXTServiceUnavailable   retries exhausted (connection, 5xx, 429)
    +-- MXTPipelineError        a brick or pipeline could not run
    +-- MXTDependencyError      an optional dependency (a pip extra) is not installed
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

__all__ = [
    "MXTError",
    "MXTFormatError",
    "MXTSchemaError",
    "MXTInputError",
    "MXTCalibrationError",
    "MXTCaldbError",
    "MXTCaldbNotFound",
    "MXTCaldbAmbiguous",
    "MXTServiceError",
    "MXTAuthError",
    "MXTServiceUnavailable",
    "MXTPipelineError",
    "MXTDependencyError",
]


class MXTError(Exception):
    """Base class of every error raised on purpose by the MXT pipeline.

    Parameters
    ----------
    message : str
        What went wrong, in words.
    file : str or path-like, optional
        The file concerned.
    hdu : str or int, optional
        The HDU (EXTNAME or index) concerned.
    column : str, optional
        The table column concerned.
    keyword : str, optional
        The header keyword concerned.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | PathLike[str] | None = None,
        hdu: str | int | None = None,
        column: str | None = None,
        keyword: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.hdu = hdu
        self.column = column
        self.keyword = keyword
        super().__init__(self._render())

    @property
    def location(self) -> str:
        """The location as ``file[HDU] column=... keyword=...`` (empty when unknown)."""
        parts = []
        if self.file is not None:
            where = self.file
            if self.hdu is not None:
                where += f"[{self.hdu}]"
            parts.append(where)
        elif self.hdu is not None:
            parts.append(f"HDU {self.hdu}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        if self.keyword is not None:
            parts.append(f"keyword {self.keyword}")
        return " ".join(parts)

    def _render(self) -> str:
        loc = self.location
        return f"{loc}: {self.message}" if loc else self.message


class MXTFormatError(MXTError):
    """A file, HDU, column or keyword does not follow its documented format."""


class MXTSchemaError(MXTFormatError):
    """One or more schema violations; ``violations`` holds every one of them."""

    def __init__(self, message: str, violations: Sequence[object] = (), **where) -> None:
        self.violations = list(violations)
        detail = "".join(f"\n  - {v}" for v in self.violations)
        super().__init__(message + detail, **where)


class MXTInputError(MXTError):
    """Input data follow the format but cannot be processed (empty, NaN, inconsistent)."""


class MXTCalibrationError(MXTError):
    """A calibration file lacks a needed value, or a value is out of its valid range."""


class MXTCaldbError(MXTError):
    """Calibration database selection or access failed."""


class MXTCaldbNotFound(MXTCaldbError):
    """No calibration file matches the query."""


class MXTCaldbAmbiguous(MXTCaldbError):
    """Several calibration files match where exactly one is required."""


class MXTServiceError(MXTCaldbError):
    """A remote FSC service (CALDB, science database) answered with an error.

    ``status`` holds the HTTP status code when there was one.
    """

    def __init__(self, message: str, status: int | None = None, **where) -> None:
        self.status = status
        super().__init__(message, **where)


class MXTAuthError(MXTServiceError):
    """The service refused the token (HTTP 401 or 403)."""


class MXTServiceUnavailable(MXTServiceError):
    """The service could not be reached, or kept failing, after every retry."""


class MXTPipelineError(MXTError):
    """A brick or a pipeline could not complete."""


class MXTDependencyError(MXTError):
    """An optional dependency is missing; the message names the pip extra that installs it."""
