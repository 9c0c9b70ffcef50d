"""How every ringstore process writes its log: to stderr, as text or as JSON lines, each line
carrying the id of the request it was written for (:mod:`ringstore.tracing`), if any.

- ``text``: ``<time> <LEVEL> <service> <logger>: <message>``, then `` [rid=<id>]`` when the line
  belongs to a request, then the traceback if there is one.
- ``json``: one object per line with the keys ``ts`` (ISO 8601, UTC, milliseconds), ``level``,
  ``service``, ``logger``, ``msg`` and ``request_id`` ("" outside a request), plus ``exc`` (the
  traceback) when there is one.

Every service takes ``--log-level`` and ``--log-format`` (:func:`add_arguments`), whose defaults
come from RINGSTORE_LOG_LEVEL and RINGSTORE_LOG_FORMAT.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from typing import TextIO

from ringstore import tracing

FORMATS = ("text", "json")
LEVEL_ENV = "RINGSTORE_LOG_LEVEL"
FORMAT_ENV = "RINGSTORE_LOG_FORMAT"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or "") on every record as ``request_id``, and the
    service's name as ``service``."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = tracing.current.get()
        record.service = self.service
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", "")
        if not rid:
            return line
        head, sep, tail = line.partition("\n")  # the id on the message's line, not the traceback's
        return f"{head} [rid={rid}]{sep}{tail}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": getattr(record, "service", ""),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["exc"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def check_level(value: str) -> str:
    level = value.upper()
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {value!r}")
    return level


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-format``, defaulting to RINGSTORE_LOG_LEVEL and
    RINGSTORE_LOG_FORMAT (else INFO and text)."""
    parser.add_argument(
        "--log-level",
        type=check_level,
        default=os.environ.get(LEVEL_ENV, "INFO"),
        help=f"{', '.join(LEVELS)} (default: ${LEVEL_ENV} or INFO)",
    )
    parser.add_argument(
        "--log-format",
        type=check_format,
        default=os.environ.get(FORMAT_ENV, "text"),
        help=f"text, or json for one JSON object per line (default: ${FORMAT_ENV} or text)",
    )


def setup(
    service: str, level: str = "INFO", fmt: str = "text", stream: TextIO | None = None
) -> None:
    """Send the root logger's records to ``stream`` (stderr) in format ``fmt``, replacing any
    handler set before."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RequestIdFilter(service))
    handler.setFormatter(JsonFormatter() if check_format(fmt) == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(check_level(level))
