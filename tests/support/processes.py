"""Runs a sharebus service as a real subprocess (``python -m <module>``) for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx


class ServiceFailed(AssertionError):
    pass


class ServiceProcess:
    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        try:
            self.process = subprocess.Popen(
                [sys.executable, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        return self

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def wait_until(self, check: Callable[[], bool], timeout_s: float = 60.0, what: str = "ready") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServiceFailed(
                    f"{self.name} exited with {self.process.returncode} before it was {what}:\n{self.log_tail()}"
                )
            try:
                if check():
                    return
            except Exception:  # noqa: BLE001,S110 - not up yet
                pass
            time.sleep(0.2)
        raise ServiceFailed(f"{self.name} was not {what} within {timeout_s}s:\n{self.log_tail()}")

    def wait_http(self, url: str, timeout_s: float = 60.0) -> None:
        self.wait_until(lambda: httpx.get(url, timeout=1.0).status_code == 200, timeout_s, f"answering {url}")

    def wait_log(self, text: str, timeout_s: float = 60.0) -> None:
        self.wait_until(lambda: text in self.log_path.read_text(errors="replace"), timeout_s, f"logging {text!r}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        return process.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
