"""Logging set-up: stdlib logging with structured fields.

Fields passed as ``extra={...}`` (and the ``session`` id of a :class:`SessionLog`) are appended
to the line as ``key=value`` pairs, or emitted as one JSON object per line with ``log_json``.

Every line logged on behalf of a session carries ``session``: explicitly through
:class:`SessionLog` (whose fields merge with the call's ``extra``, unlike a plain
``LoggerAdapter`` which replaces them), and implicitly for any other logger called while the
:data:`current_session` context variable is set (the session's tasks, and model work run with
:func:`contextvars.copy_context`), through the handler filter :class:`SessionFilter`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any

#: The session a piece of code works for; set in the session's tasks.
current_session: contextvars.ContextVar[str | None] = contextvars.ContextVar("voice_bridge_session", default=None)


class SessionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger adapter whose ``extra`` (the session id) merges with each call's ``extra``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


class SessionFilter(logging.Filter):
    """Adds ``session`` from :data:`current_session` to records that do not carry one.

    Attached to handlers: handlers run in the logging call's thread and context, so the
    variable is the caller's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "session" not in record.__dict__:
            session = current_session.get()
            if session is not None:
                record.session = session
        return True


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in fields.items())
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, object] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str, ensure_ascii=False)


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SessionFilter())
    handler.setFormatter(
        JsonFormatter() if json_lines else KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log is one line per request; keep it at warning unless debugging.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
