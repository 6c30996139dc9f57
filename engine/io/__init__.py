"""Reading and writing files: images with their metadata (``imageio``) and atomic writes
(``fileio``). Imports only ``engine.errors``."""
