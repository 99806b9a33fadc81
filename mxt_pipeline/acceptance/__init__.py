"""Acceptance studies: Monte-Carlo measurements of what the pipeline's bricks deliver.

Each study simulates observations, runs them through the same bricks, with the same
defaults and CALDB, as ``mxt run``, and judges the results against the requirements
(``python -m mxt_pipeline.acceptance.detection``).
"""
