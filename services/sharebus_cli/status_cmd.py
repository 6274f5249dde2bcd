"""``sharebus status``: what the ``sharebus run`` on this machine is running, whether each part answers,
and where each listens; read from the state file the run writes once it is up (``run_state.py``).

Exit 0 when every part answers, 1 when no bus is running (no state file, or the run that wrote it is
gone), 6 when the bus runs but a part does not answer (as the CLI's other "try again later" errors).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from sharebus_cli.run_settings import RunSettings, scrape_token_path
from sharebus_cli.run_state import RunProcess, RunState, read_state
from sharebus_core.scrape_auth import ScrapeTokenError, load_scrape_token, scrape_headers

PROBE_TIMEOUT_S = 2.0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help="what the local bus (sharebus run) runs, whether each part answers")
    status.add_argument("--json", action="store_true")
    status.add_argument(
        "--state-file", type=Path, help="the run's state file (default: SHAREBUS_RUN_STATE_FILE or var/run/state.json)"
    )


@dataclass(frozen=True)
class PartStatus:
    name: str
    pid: int | None
    running: bool
    door: str | None
    ready_url: str | None
    answers: bool
    detail: str
    log: str


def pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process under that id: it exists
    return True


def run_scrape_headers(settings: RunSettings) -> dict[str, str]:
    """The scrape token for the parts whose ready URL is a /metrics: SHAREBUS_SCRAPE_TOKEN_FILE (or
    SHAREBUS_SCRAPE_TOKEN) when set, else the one the run keeps beside its state file, when readable."""
    try:
        return scrape_headers() or load_scrape_token(None, scrape_token_path(settings)).headers
    except ScrapeTokenError:
        return {}  # such a part then answers 401, and says so


def probe(url: str | None, headers: dict[str, str] | None = None) -> tuple[bool, str]:
    """Whether ``url`` answers 200 now (asked with ``headers``: the scrape token), and what it answered."""
    if url is None:
        return False, "no ready URL"
    try:
        code = httpx.get(url, timeout=PROBE_TIMEOUT_S, headers=headers or {}).status_code
    except httpx.HTTPError as exc:
        return False, f"no answer from {url} ({type(exc).__name__})"
    return code == 200, f"{url} answered {code}"


def reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            return True
    except (OSError, ValueError):
        return False


def _part(process: RunProcess, headers: dict[str, str] | None = None) -> PartStatus:
    running = pid_alive(process.pid)
    answers, detail = probe(process.ready_url, headers) if running else (False, "exited")
    return PartStatus(process.name, process.pid, running, process.door, process.ready_url, answers, detail, process.log)


def check(state: RunState, headers: dict[str, str] | None = None) -> tuple[list[PartStatus], dict[str, bool]]:
    """Every part asked at once, so that one that hangs costs its timeout once, not once per part."""
    addresses = state.broker.split(",")
    with ThreadPoolExecutor(max_workers=8) as pool:
        parts = list(pool.map(lambda process: _part(process, headers), state.processes))
        brokers = dict(zip(addresses, pool.map(reachable, addresses), strict=True))
    return parts, brokers


def _text(path: Path, state: RunState, parts: list[PartStatus], brokers: dict[str, bool]) -> str:
    since = state.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"sharebus run: pid {state.pid}, up since {since}, namespace {state.namespace} (state file {path})"]
    for address, ok in brokers.items():
        lines.append(
            f"  {'broker':<16} {address:<26} {'reachable' if ok else 'NOT REACHABLE':<14} log {state.broker_log}"
        )
    for p in parts:
        word = "ready" if p.answers else ("NOT ANSWERING" if p.running else "EXITED")
        lines.append(f"  {p.name:<16} {p.door or '-':<26} {word:<14} pid {p.pid}  {p.detail}  log {p.log}")
    down = [p.name for p in parts if not p.answers] + [a for a, ok in brokers.items() if not ok]
    lines.append(f"not answering: {', '.join(down)}" if down else "every part answers")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[str, int]:
    settings = RunSettings()
    path: Path = args.state_file or settings.state_file
    state = read_state(path)
    if state is None or not pid_alive(state.pid):
        why = (
            f"no state file at {path}"
            if state is None
            else f"the run that wrote {path} (pid {state.pid}) is no longer running"
        )
        body: dict[str, Any] = {"running": False, "state_file": str(path), "reason": why}
        text = f"sharebus is not running here: {why} (`make run` writes it once the bus is up)"
        return (json.dumps(body, indent=2) if args.json else text), 1
    parts, brokers = check(state, run_scrape_headers(settings))
    healthy = all(p.answers for p in parts) and all(brokers.values())
    code = 0 if healthy else 6
    if not args.json:
        return _text(path, state, parts, brokers), code
    body = {
        "running": True,
        "healthy": healthy,
        "state_file": str(path),
        "pid": state.pid,
        "started_at": state.started_at.isoformat(),
        "namespace": state.namespace,
        "broker": {"bootstrap": state.broker, "reachable": brokers, "log": state.broker_log},
        "processes": [asdict(p) for p in parts],
    }
    return json.dumps(body, indent=2), code
