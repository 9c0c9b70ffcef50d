"""The ``ringstore`` command's own checks, made before it talks to any gateway."""

from __future__ import annotations

from click.testing import CliRunner

from ringstore.cli.main import cli


def test_mv_onto_itself_is_refused_before_any_call() -> None:
    # The endpoint is unreachable: a refusal that reached the network would say so instead.
    for src, dest in (("b/doc.txt", "b/doc.txt"), ("b/doc.txt", "rs://b/doc.txt")):
        result = CliRunner().invoke(cli, ["--endpoint", "127.0.0.1:1", "mv", src, dest])
        assert result.exit_code == 2, result.output
        assert "b/doc.txt is both source and destination" in result.output
