"""The ports a local cluster's nodes listen on, chosen once and saved in its data directory.

Clients' credential files (and the services started by ``make run``) carry the whole broker list,
so a restarted cluster must listen where it did before: with fresh ports, a client whose file names
the old ones could reach only node 1, and none at all while node 1 is down. The file sits next to
the nodes' data, as the cluster id does, and goes when the data directory goes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from sharebus_broker.config import NodeAddress
from sharebus_broker.node import BrokerStartError
from sharebus_core.ports import free_port

FILE_NAME = "ports.json"


class SavedNode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    client_port: int
    stream_port: int
    controller_port: int


class SavedPorts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str
    nodes: dict[int, SavedNode]


def read_saved_ports(data_dir: Path) -> SavedPorts | None:
    """The saved ports, or None when there are none yet; a damaged file is an error (fail closed)."""
    path = data_dir / FILE_NAME
    if not path.is_file():
        return None
    try:
        return SavedPorts.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise BrokerStartError(
            f"cannot read the brokers' saved ports in {path}: {exc}; restore it, or remove it to choose new ports "
            "(then reissue the credential files, which name the old ones)"
        ) from exc


def node_addresses(data_dir: Path, host: str, count: int, fixed: tuple[int, int, int]) -> tuple[NodeAddress, ...]:
    """Every node's address: node 1's ``fixed`` ports where set (non-zero), else the saved ones, else new ones.

    The saved ports count only for the same host: a cluster moved to another host name starts afresh.
    """
    saved = read_saved_ports(data_dir)
    known = saved.nodes if saved is not None and saved.host == host else {}

    def port(node_id: int, index: int) -> int:
        if node_id == 1 and fixed[index]:
            return fixed[index]
        if node_id in known:
            entry = known[node_id]
            return (entry.client_port, entry.stream_port, entry.controller_port)[index]
        return free_port(host)

    return tuple(NodeAddress(i, host, port(i, 0), port(i, 1), port(i, 2)) for i in range(1, count + 1))


def save_ports(data_dir: Path, addresses: tuple[NodeAddress, ...]) -> None:
    """Writes the nodes' ports (atomically: a crash leaves the old file or the new one)."""
    host = addresses[0].host
    saved = SavedPorts(
        host=host,
        nodes={
            a.node_id: SavedNode(
                client_port=a.client_port, stream_port=a.stream_port, controller_port=a.controller_port
            )
            for a in addresses
        },
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = data_dir / f"{FILE_NAME}.tmp"
    temporary.write_text(json.dumps(saved.model_dump(mode="json"), indent=2) + "\n")
    os.replace(temporary, data_dir / FILE_NAME)


__all__ = ["node_addresses", "read_saved_ports", "save_ports"]
