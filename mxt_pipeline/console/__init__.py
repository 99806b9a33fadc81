"""The operations console: a web page to follow runs, browse products and reprocess.

``mxt console --root OUT_DIR`` serves it (see ``docs/console.md``).  Modules:
:mod:`~mxt_pipeline.console.app` (the Starlette application and its pages),
:mod:`~mxt_pipeline.console.auth` (operator token, sessions, CSRF),
:mod:`~mxt_pipeline.console.scan` (the runs under the output root, safe paths),
:mod:`~mxt_pipeline.console.jobs` (background reprocessing),
:mod:`~mxt_pipeline.console.diff` (what a reprocessing changed),
:mod:`~mxt_pipeline.console.checks` (validation and fitsverify of products),
:mod:`~mxt_pipeline.console.trends` (the harness page's charts),
:mod:`~mxt_pipeline.console.command` (the ``mxt console`` command).

The package imports nothing itself: ``mxt --help`` looks up the ``console`` command
without the web stack, which comes with the ``service`` extra.
"""
