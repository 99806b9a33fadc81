"""Telemetry: CCSDS space packets of the MXT data, in memory (no file access).

:mod:`~mxt_pipeline.telemetry.packets` encodes and checks single packets,
:mod:`~mxt_pipeline.telemetry.stream` turns L1 passes and attitude into the packets of
on-board dumps and decodes deliveries back with a defect report,
:mod:`~mxt_pipeline.telemetry.downlink` reproduces the defects of a real downlink.
Packet files are read and written by :mod:`mxt_pipeline.io.telemetry_stream`.
"""
