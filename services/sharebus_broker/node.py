"""One node of the local cluster: its storage, its process, its log."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sharebus_broker.config import NodeAddress
from sharebus_broker.settings import DEPLOY_DIR, BrokerSettings
from sharebus_core.errors import SharebusError
from sharebus_core.processes import die_with_parent, stop_process


class BrokerStartError(SharebusError, RuntimeError):
    """The broker did not come up; the message carries the tail of its log."""


def java_command(settings: BrokerSettings, libs: Path, *args: str) -> list[str]:
    return [
        "java",
        f"-Xmx{settings.heap}",
        "-Xms256m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        *args,
    ]


def read_cluster_id(log_dir: Path) -> str | None:
    """The cluster id a formatted node's storage carries, or None when it is not formatted."""
    meta = log_dir / "meta.properties"
    if not meta.is_file():
        return None
    for line in meta.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id":
            return value.strip()
    return None


class BrokerNode:
    """A combined broker+controller process. The cluster (``KafkaBroker``) writes its config."""

    def __init__(self, settings: BrokerSettings, address: NodeAddress, node_dir: Path, log_path: Path) -> None:
        self.settings = settings
        self.address = address
        self.node_dir = node_dir
        self.log_dir = node_dir / "logs"
        self.config_path = node_dir / "server.properties"
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def format(self, libs: Path, cluster_id: str, scram: list[str]) -> None:
        """Formats the node's storage unless it already is (a restart keeps its data)."""
        if read_cluster_id(self.log_dir) is not None:
            return
        result = subprocess.run(
            java_command(
                self.settings,
                libs,
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                "-c",
                str(self.config_path),
                *scram,
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerStartError(
                f"formatting Kafka storage in {self.node_dir} failed:\n{(result.stdout + result.stderr)[-3000:]}"
            )

    def spawn(self, libs: Path) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed after spawn
        try:
            self._process = subprocess.Popen(
                java_command(self.settings, libs, "kafka.Kafka", str(self.config_path)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()

    def exit_code(self) -> int | None:
        """None while running (or never started); the exit code once it has ended."""
        return None if self._process is None else self._process.poll()

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def terminate(self) -> None:
        """SIGTERM without waiting: the cluster signals every node first, so none waits for a quorum
        its peers have already left."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def stop(self, timeout_s: float = 30.0) -> None:
        process, self._process = self._process, None
        stop_process(process, timeout_s)

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug would end it."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


__all__ = ["BrokerNode", "BrokerStartError", "java_command", "read_cluster_id"]
