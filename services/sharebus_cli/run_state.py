"""What a running ``sharebus run`` started, and where: a file it writes once the bus is up and removes
when it stops, which ``sharebus status`` reads (processes, their ready URLs, the broker, the logs)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from sharebus_cli.children import Child
from sharebus_core.errors import SharebusError


class RunStateError(SharebusError):
    """The state file exists but cannot be read as one."""


class RunProcess(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    pid: int | None
    # The URL that answered 200 once it was started (/readyz, /metrics, /-/ready, ...).
    ready_url: str | None
    # Where it listens: the ready URL's origin.
    door: str | None
    log: str


class RunState(BaseModel):
    model_config = ConfigDict(frozen=True)

    pid: int
    started_at: AwareDatetime
    namespace: str
    broker: str
    broker_log: str
    processes: tuple[RunProcess, ...]


def door_of(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def state_of(namespace: str, broker: str, broker_log: Path, children: Sequence[Child]) -> RunState:
    """The run as it is now: this process and each child it watches, in the order they started."""
    processes = tuple(
        RunProcess(name=c.name, pid=c.pid, ready_url=c.ready_url, door=door_of(c.ready_url), log=str(c.log_path))
        for c in children
    )
    return RunState(
        pid=os.getpid(),
        started_at=dt.datetime.now(dt.UTC),
        namespace=namespace,
        broker=broker,
        broker_log=str(broker_log),
        processes=processes,
    )


def write_state(path: Path, state: RunState) -> None:
    """Written whole, then renamed: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(state.model_dump_json(indent=2))
    partial.replace(path)


def remove_state(path: Path, pid: int) -> None:
    """Removes the file if it is still this run's (another run may have started since and written its own)."""
    try:
        state = read_state(path)
        if state is not None and state.pid == pid:
            path.unlink()
    except (RunStateError, OSError):
        return


def read_state(path: Path) -> RunState | None:
    """The run's state, or ``None`` when no run wrote one (none running, or stopped)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunStateError(f"cannot read {path}: {exc}") from exc
    try:
        return RunState.model_validate_json(text)
    except ValidationError as exc:
        raise RunStateError(f"{path} is not a sharebus run's state file: {exc.errors()[0]['msg']}") from exc
