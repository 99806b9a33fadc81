"""Access to the FSC services shared by every client: token, retrying HTTP, downloads.

One token serves every FSC service (CALDB, science database): :func:`resolve_token`
finds it (explicit value, ``runtime_data.json``, ``MXT_TOKEN``).  :class:`RetryingClient`
sends it, retries transient failures with backoff and maps HTTP errors to the
:mod:`mxt_pipeline.errors` hierarchy; its downloads are atomic, checksum-verified,
cached and confined to the download folder.
"""

from mxt_pipeline.services.files import safe_filename, sha256_file
from mxt_pipeline.services.http import CHECKSUM_HEADER, RetryingClient, RetryPolicy
from mxt_pipeline.services.tokens import TOKEN_ENV, Secret, resolve_token

__all__ = [
    "CHECKSUM_HEADER",
    "RetryPolicy",
    "RetryingClient",
    "Secret",
    "TOKEN_ENV",
    "resolve_token",
    "safe_filename",
    "sha256_file",
]
