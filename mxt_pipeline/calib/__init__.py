"""Calibration chain: L1 raw hits of every pass -> L2 calibrated, screened events.

Modules: :mod:`~mxt_pipeline.calib.coordinates` (RAW -> DET -> RA/Dec -> sky),
:mod:`~mxt_pipeline.calib.ingest` (merge passes), :mod:`~mxt_pipeline.calib.patterns`
(event reconstruction and pattern codes), :mod:`~mxt_pipeline.calib.energy` (CTI, gain,
offset, multiplicity, PI), :mod:`~mxt_pipeline.calib.badpix` (bad and hot pixels),
:mod:`~mxt_pipeline.calib.screening` (GTIs and gaps) and :mod:`~mxt_pipeline.calib.chain`
(the whole L1 -> L2 calibration).  Submodules are imported on demand.
"""
