"""Service subprocesses that never outlive the supervisor, and stop in order."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from sharebus_core.errors import SharebusError
from sharebus_core.processes import die_with_parent, log_tail, stop_process
from sharebus_core.scrape_auth import scrape_headers


class ChildFailed(SharebusError, RuntimeError):
    pass


class Child:
    def __init__(self, name: str, module: str, env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.module = module
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        # Where it answered once started: what ``sharebus status`` asks again (run_state.py).
        self.ready_url: str | None = None

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        return self

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def wait_http(self, url: str, timeout_s: float) -> None:
        # With the child's scrape token, if it has one: a /metrics answers nobody else.
        headers = scrape_headers(self.env)
        check = lambda: httpx.get(url, timeout=1.0, headers=headers).status_code == 200  # noqa: E731
        self.wait_until(check, timeout_s, f"answering {url}")
        self.ready_url = url

    def wait_until(self, check: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise ChildFailed(f"{self.name} exited before {what}. Last lines of {self.log_path}:\n{self.tail()}")
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise ChildFailed(f"{self.name} was not {what} within {timeout_s:.0f}s. See {self.log_path}:\n{self.tail()}")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (then SIGKILL after ``timeout_s``); returns the exit code. Safe to call twice."""
        process, self.process = self.process, None
        return stop_process(process, timeout_s)

    def kill(self) -> int | None:
        """Ends the child abruptly, as a crash would (fault tests); returns its exit code (-9 when
        the signal killed it, None when it was not running)."""
        process, self.process = self.process, None
        if process is None:
            return None
        process.kill()
        return process.wait(timeout=10)


def start_child(
    name: str, module: str, env: Mapping[str, str], log_path: Path, ready_url: str, timeout_s: float
) -> Child:
    """Starts ``python -m module`` and returns once ``ready_url`` answers 200; stops it if it never does."""
    child = Child(name, module, env, log_path).start()
    try:
        child.wait_http(ready_url, timeout_s)
    except BaseException:
        child.stop()
        raise
    return child
