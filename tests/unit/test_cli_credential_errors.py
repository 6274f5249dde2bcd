"""The ``sharebus`` command facing a Kafka credential it cannot use (no broker needed).

A newcomer's first operator command is often run before the ``export`` line ``make run`` prints, or
with a relative path from another directory: the answer must be one line naming what to set, not a
Python traceback.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path

import pytest

from sharebus_cli.main import main
from tests.unit.fixtures import FIXTURE_CATALOGUE


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    monkeypatch.setenv("SHAREBUS_BOOTSTRAP", "127.0.0.1:1")  # nothing listens: it must not get that far
    for name in ("SHAREBUS_KAFKA_USERNAME", "SHAREBUS_KAFKA_PASSWORD", "SHAREBUS_KAFKA_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("command", [["dlq", "list"], ["freshness"], ["land", "--system", "tax-levy", "--plan"]])
def test_an_unreadable_credentials_file_is_one_line_and_exit_7(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    monkeypatch.setenv("SHAREBUS_KAFKA_CREDENTIALS_FILE", str(missing))
    assert main(command) == 7
    err = capsys.readouterr().err
    assert err.startswith("sharebus: cannot read the Kafka credential file")
    assert str(missing) in err
    assert "Traceback" not in err


def test_no_credential_at_all_says_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list"]) == 7
    err = capsys.readouterr().err
    assert err.startswith("sharebus: no Kafka credential: set SHAREBUS_KAFKA_USERNAME")
    assert "SHAREBUS_KAFKA_CREDENTIALS_FILE" in err


def test_a_reader_that_goes_away_ends_the_command_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sharebus catalogue classes | head -2`` printed a BrokenPipeError traceback once head had exited."""
    with capsys.disabled():
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone: the next write fails with EPIPE
        broken = os.fdopen(write_end, "w")
        monkeypatch.setattr(sys, "stdout", broken)
        errors = io.StringIO()
        monkeypatch.setattr(sys, "stderr", errors)
        previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as in Python: EPIPE, not a signal
        try:
            code = main(["catalogue", "classes"])
        finally:
            signal.signal(signal.SIGPIPE, previous)
        assert code == 1
        assert errors.getvalue() == ""
        assert os.fstat(sys.stdout.fileno())  # still a file to flush into at exit: /dev/null now
