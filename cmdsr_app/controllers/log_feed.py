"""The Log panel's feed: what the app and the engine log, from any thread, and the
exceptions nobody caught, traceback included."""

from __future__ import annotations

import logging

from cmdsr_app.crash_log import install_exception_logging
from cmdsr_app.views.panels import LogPanel, QtLogHandler

LOGGERS = ("engine", "cmdsr_app")


class LogFeed:
    """Sends the records of :data:`LOGGERS` (INFO and above) to ``panel`` until
    :meth:`detach`."""

    def __init__(self, panel: LogPanel) -> None:
        self.handler = QtLogHandler()
        self.handler.bridge.record.connect(panel.append)
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self.handler)
        install_exception_logging()

    def detach(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self.handler)
