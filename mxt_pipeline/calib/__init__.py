"""Calibration chain: L1 raw hits of every pass -> L2 calibrated, screened events.

Modules: :mod:`~mxt_pipeline.calib.coordinates` (L2 event coordinate columns; the
transforms are :mod:`mxt_pipeline.geometry`),
:mod:`~mxt_pipeline.calib.ingest` (merge passes), :mod:`~mxt_pipeline.calib.patterns`
(event reconstruction and pattern codes), :mod:`~mxt_pipeline.calib.energy` (CTI, gain,
offset, multiplicity, PI), :mod:`~mxt_pipeline.calib.badpix` (bad and hot pixels),
:mod:`~mxt_pipeline.calib.screening` (GTIs and gaps) and :mod:`~mxt_pipeline.calib.chain`
(the whole L1 -> L2 calibration).  Submodules are imported on demand.
"""
