"""CMDSR Studio's desktop application (PySide6): ``main_window`` composes the rooms
(``controllers/``, ``views/``, ``training/``) over the Qt-free state and jobs at the top
(``state``, ``jobs``, ``workers``, ``settings``, ...). Imports the engine only, never the reverse."""
