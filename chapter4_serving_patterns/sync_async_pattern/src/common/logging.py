"""JSON lines on stdout: one object per record, the same for the app, gunicorn and uvicorn.

    {"time": "2026-01-01T12:00:00.123Z", "level": "INFO", "logger": "access",
     "message": "GET /health 200", "request_id": "…", "status": 200, "latency_ms": 0.41}

Fields given with `extra=` (model_name, model_version, latency_ms, ...) are added as they are.
`setup_logging()` may run any number of times (app factory, tests, a gunicorn worker that
inherited the master's configuration): the root logger always ends with exactly one JSON handler.
Under gunicorn, `logging_config()` is its `logconfig_dict`, so the master logs the same way.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from src.common.request_id import current_request_id

# Server loggers whose records go through the root handler instead of their own.
ROUTED_LOGGERS = ("gunicorn", "gunicorn.error", "uvicorn", "uvicorn.error")
# Their access logs would repeat the line RequestIdMiddleware writes (with the request id).
SILENCED_ACCESS_LOGGERS = ("gunicorn.access", "uvicorn.access")
# LogRecord's own attributes; whatever else a record carries came in through `extra=`.
# uvicorn's `color_message` repeats the message with terminal colour codes.
_RESERVED = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_") and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class JsonLinesHandler(logging.StreamHandler[TextIO]):
    """The one root handler: JSON lines on stdout (the type marks it as ours)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stdout)
        self.setFormatter(JsonFormatter())


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """The same setup as a `logging.config.dictConfig` dictionary (gunicorn's logconfig_dict)."""
    routed = {
        name: {"level": "NOTSET", "handlers": [], "propagate": True} for name in ROUTED_LOGGERS
    }
    silenced = {
        name: {"level": "WARNING", "handlers": [], "propagate": True}
        for name in SILENCED_ACCESS_LOGGERS
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {},
        "handlers": {"json": {"()": JsonLinesHandler}},
        "root": {"level": level, "handlers": ["json"]},
        "loggers": {**routed, **silenced},
    }


def setup_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Idempotent: replaces any JSON handler already on the root logger and reroutes the
    server loggers (uvicorn's worker gives them handlers of their own and stops propagation).
    `stream` (default stdout) is for tools whose stdout is their product, e.g. SQL output."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, JsonLinesHandler)]:
        root.removeHandler(handler)
    root.addHandler(JsonLinesHandler(stream))
    root.setLevel(level)
    for name in ROUTED_LOGGERS:
        _propagate_only(logging.getLogger(name), logging.NOTSET)
    for name in SILENCED_ACCESS_LOGGERS:
        _propagate_only(logging.getLogger(name), logging.WARNING)


def _propagate_only(logger: logging.Logger, level: int) -> None:
    logger.handlers.clear()
    logger.setLevel(level)
    logger.propagate = True
