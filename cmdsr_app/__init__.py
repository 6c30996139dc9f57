"""CMDSR Studio's desktop application (PySide6). Imports the engine only via ``from engine import ...``."""
