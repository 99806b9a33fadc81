"""The words ``--help`` uses for what several subcommands share, defined once.

A newcomer reads ``mxt run --help``, then ``mxt simulate grb --help``: the same thing
must be described the same way (a CALDB root is a *CALDB root folder* with the same
default everywhere, an output place is a *folder*).  Subcommands take their help
texts for shared options from here.
"""

from __future__ import annotations

__all__ = ["CALDB_HELP", "CALDB_ROOT_HELP", "CALDB_URL_HELP", "SEED_HELP", "PROGRESS_HELP"]

#: ``--caldb`` of the commands that read calibration files.
CALDB_HELP = "CALDB root folder (default: $CALDB, else the bundled fixtures_caldb/)."
#: ``--root`` of ``mxt caldb`` client commands (which may also talk to a service).
CALDB_ROOT_HELP = "CALDB root folder (default: $MXT_CALDB_URL, else $CALDB, else the bundled fixtures_caldb/)."
#: ``--caldb-url`` / ``--url``.
CALDB_URL_HELP = "CALDB service URL (default: $MXT_CALDB_URL)."
#: ``--seed``.
SEED_HELP = "Root random seed (the same seed gives the same result)."
#: ``--progress/--no-progress``.
PROGRESS_HELP = "Progress bar (default: on when the terminal is interactive)."
