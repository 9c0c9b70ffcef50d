"""Log lines as text or JSON, each carrying the id of the request it was written for."""

from __future__ import annotations

import argparse
import contextvars
import io
import json
import logging
from collections.abc import Iterator

import pytest

from ringstore import logs, tracing


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def _write(fmt: str, request_id: str | None) -> str:
    out = io.StringIO()
    logs.setup("metanode", "INFO", fmt, stream=out)

    def body() -> None:
        if request_id is not None:
            tracing.begin(request_id)
        logging.getLogger("metanode.catalog").info("committed %s", "b/k")
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("metanode.gc").exception("gc pass failed")

    contextvars.copy_context().run(body)  # the request id stays inside this "request"
    return out.getvalue()


@pytest.mark.usefixtures("restore_root")
def test_json_lines_parse_and_carry_the_request_id() -> None:
    lines = _write("json", "RID0123456789ABC").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"ts", "level", "service", "logger", "msg", "request_id"}
    assert first["level"] == "INFO" and first["service"] == "metanode"
    assert first["logger"] == "metanode.catalog" and first["msg"] == "committed b/k"
    assert first["request_id"] == "RID0123456789ABC"
    assert first["ts"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ValueError: bad" in second["exc"]


@pytest.mark.usefixtures("restore_root")
def test_json_lines_outside_a_request_have_an_empty_id() -> None:
    entry = json.loads(_write("json", None).splitlines()[0])
    assert entry["request_id"] == ""


@pytest.mark.usefixtures("restore_root")
def test_text_lines_name_the_request_on_the_message_line_only() -> None:
    text = _write("text", "RID42")
    first, second = text.splitlines()[:2]
    assert first.endswith("INFO metanode metanode.catalog: committed b/k [rid=RID42]")
    assert second.endswith("gc pass failed [rid=RID42]")
    assert "Traceback" in text and text.count("[rid=") == 2
    assert "[rid=" not in _write("text", None)


def test_bad_format_and_level_are_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"text, json.*'yaml'"):
        logs.check_format("yaml")
    with pytest.raises(ValueError, match=r"DEBUG, INFO, WARNING, ERROR.*'loud'"):
        logs.check_level("loud")
    parser = argparse.ArgumentParser()
    logs.add_arguments(parser)
    args = parser.parse_args(["--log-format", "json", "--log-level", "debug"])
    assert (args.log_format, args.log_level) == ("json", "DEBUG")


def test_request_ids_from_callers_are_kept_only_when_well_formed() -> None:
    assert tracing.accepted("ABC-12_3.x") == "ABC-12_3.x"
    for bad in ("", None, "a b", "x\ny", "é", "a" * (tracing.MAX_ID_LENGTH + 1)):
        assert tracing.accepted(bad) is None

    def body() -> tuple[str, tuple[tuple[str, str], ...]]:
        assert tracing.outgoing() == ()  # outside a request an internal call carries no id
        rid = tracing.begin("bad id\n")  # replaced by a fresh one
        return rid, tracing.outgoing()

    rid, sent = contextvars.copy_context().run(body)
    assert len(rid) == 2 * tracing.ID_BYTES and rid.isalnum()
    assert sent == ((tracing.METADATA_KEY, rid),)
