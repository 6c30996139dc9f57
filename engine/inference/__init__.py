"""Upscaling a photo with a trained model: tiling (``upscaler``), devices and precision,
support selection, local adaptation, the damage readout, CPU capabilities. Imports the core
and ``engine.io`` only."""
