"""Child processes of sharebus services: they never outlive their starter, and stop in order."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for children: SIGTERM when the starter dies (a killed test run or ``make run``), and
    a process group of their own, so a terminal's Ctrl-C reaches only the starter, which then stops
    the children in order (clients before the broker they need)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``; returns its exit code."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"
