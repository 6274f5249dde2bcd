"""``sharebus status`` on a state file like the one ``sharebus run`` writes: each part asked again, and a
run that is gone or a part that does not answer said as such (the whole bus: tests/e2e/test_run_demo.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sharebus_broker.launcher import free_port
from sharebus_cli.main import main
from sharebus_cli.run_state import RunProcess, RunState, read_state, remove_state, write_state
from tests.support.http_stub import QuietHandler, serving


@pytest.fixture
def ready_server() -> Iterator[str]:
    """A process's port that answers /readyz 200 and anything else 503."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/readyz" else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as url:
        yield url


@pytest.fixture
def broker_port() -> Iterator[int]:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield listening.getsockname()[1]


def state(pid: int, broker: str, *processes: RunProcess) -> RunState:
    return RunState(
        pid=pid,
        started_at=dt.datetime(2026, 12, 3, 15, 0, tzinfo=dt.UTC),
        namespace="sharebus",
        broker=broker,
        broker_log="var/kafka-broker.log",
        processes=processes,
    )


def part(name: str, ready_url: str, pid: int | None = None) -> RunProcess:
    door = ready_url.rsplit("/", 1)[0]
    return RunProcess(name=name, pid=pid or os.getpid(), ready_url=ready_url, door=door, log=f"var/logs/{name}.log")


def status(path: Path, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, str]:
    code = main(["status", "--state-file", str(path), *more])
    return code, capsys.readouterr().out


def test_every_part_answering_is_exit_0_with_each_door(
    tmp_path: Path, ready_server: str, broker_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "state.json"
    write_state(path, state(os.getpid(), f"127.0.0.1:{broker_port}", part("gateway", f"{ready_server}/readyz")))
    code, out = status(path, capsys, "--json")
    assert code == 0
    answer = json.loads(out)
    assert (answer["running"], answer["healthy"]) == (True, True)
    assert answer["broker"]["reachable"] == {f"127.0.0.1:{broker_port}": True}
    assert [(p["name"], p["door"], p["answers"]) for p in answer["processes"]] == [("gateway", ready_server, True)]
    code, out = status(path, capsys)
    assert code == 0
    assert f"gateway          {ready_server}" in out
    assert out.rstrip().endswith("every part answers")


def test_a_part_that_does_not_answer_or_has_exited_and_an_unreachable_broker_are_named_exit_6(
    tmp_path: Path, ready_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = tmp_path / "state.json"
    broker = f"127.0.0.1:{free_port()}"
    write_state(
        path,
        state(
            os.getpid(),
            broker,
            part("gateway", f"{ready_server}/readyz"),
            part("portal", f"{ready_server}/metrics"),  # answers 503
            part("router", f"{ready_server}/readyz", pid=int(gone.stdout)),
        ),
    )
    code, out = status(path, capsys)
    assert code == 6
    assert f"{ready_server}/metrics answered 503" in out
    assert "EXITED" in out
    assert out.rstrip().endswith(f"not answering: portal, router, {broker}")


def test_no_run_or_a_run_that_is_gone_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.json"
    code, out = status(path, capsys)
    assert code == 1
    assert f"sharebus is not running here: no state file at {path}" in out
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_state(path, state(int(gone.stdout), "127.0.0.1:9"))
    code, out = status(path, capsys, "--json")
    assert code == 1
    assert json.loads(out)["reason"] == f"the run that wrote {path} (pid {int(gone.stdout)}) is no longer running"


def test_a_run_removes_only_its_own_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, state(os.getpid(), "127.0.0.1:9"))
    remove_state(path, os.getpid() + 1)  # an earlier run stopping after this one started
    assert read_state(path) is not None
    remove_state(path, os.getpid())
    assert read_state(path) is None


def test_a_state_file_that_is_not_one_is_said_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.json"
    path.write_text("{}")
    assert main(["status", "--state-file", str(path)]) == 2
    assert "is not a sharebus run's state file" in capsys.readouterr().err
