"""MirrorMaker 2 in dedicated mode, started by the project as the broker is.

One process (``org.apache.kafka.connect.mirror.MirrorMaker`` with a properties file, what
``connect-mirror-maker.sh`` runs) mirrors both directions of one district's federation. It talks
SASL_SSL + SCRAM to both clusters, as its own principal on each (plan.py), trusting each bus's CA.

Health: the process is alive, and each enabled flow's source task reports RUNNING in the Connect
status topic that MirrorMaker 2 keeps on the flow's target cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from confluent_kafka import Consumer, KafkaException, TopicPartition

from sharebus_broker.jars import resolve_jars
from sharebus_broker.node import java_command
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import SASL_MECHANISM, KafkaAccess
from sharebus_core.processes import die_with_parent, log_tail, stop_process
from sharebus_federation.plan import CITY, Federation, topics_regex
from sharebus_federation.settings import FederationSettings

MAIN_CLASS = "org.apache.kafka.connect.mirror.MirrorMaker"
IDENTITY_POLICY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
_SOURCE_TASK_KEY = b"status-task-MirrorSourceConnector-0"


class MirrorError(SharebusError, RuntimeError):
    """MirrorMaker 2 could not start, or its state could not be read; the message says why."""


def _jaas(access: KafkaAccess) -> str:
    if access.password is None or access.username is None:
        raise MirrorError(f"no credential for MirrorMaker 2 on {access.bootstrap}")
    # JAAS values are double-quoted strings: a quote or backslash in them must be escaped.
    user = access.username.replace("\\", "\\\\").replace('"', '\\"')
    password = access.password.get_secret_value().replace("\\", "\\\\").replace('"', '\\"')
    return f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";'


def _cluster_properties(alias: str, access: KafkaAccess, plan: Federation) -> dict[str, str]:
    props = {f"{alias}.bootstrap.servers": access.bootstrap}
    if access.secured:
        access.check()
        props |= {
            f"{alias}.security.protocol": "SASL_SSL",
            f"{alias}.sasl.mechanism": SASL_MECHANISM,
            f"{alias}.sasl.jaas.config": _jaas(access),
            f"{alias}.ssl.truststore.type": "PEM",
            f"{alias}.ssl.truststore.location": str(access.ca_file),
        }
    # The Connect worker of the flow into this cluster keeps its state here, under the principal's names.
    props |= {
        f"{alias}.group.id": plan.user_on(alias),
        f"{alias}.offset.storage.topic": plan.internal_topic(alias, "offsets"),
        f"{alias}.config.storage.topic": plan.internal_topic(alias, "configs"),
        f"{alias}.status.storage.topic": plan.internal_topic(alias, "status"),
    }
    return props


def mirror_properties(
    plan: Federation, city: KafkaAccess, district: KafkaAccess, refresh_topics_s: int
) -> dict[str, str]:
    """The whole MirrorMaker 2 configuration (with the credentials: written 0600)."""
    props = {"clusters": f"{CITY}, {plan.district}"}
    props |= _cluster_properties(CITY, city, plan) | _cluster_properties(plan.district, district, plan)
    props |= {
        "replication.policy.class": IDENTITY_POLICY,
        # -1: the broker's default, so one broker and three are both served.
        "replication.factor": "-1",
        "offset.storage.replication.factor": "-1",
        "config.storage.replication.factor": "-1",
        "status.storage.replication.factor": "-1",
        # Only records cross: no heartbeats, checkpoints, offset syncs, group offsets, topic configs or
        # ACLs, each of which would need rights outside the federated topics (plan.py).
        "emit.heartbeats.enabled": "false",
        "emit.checkpoints.enabled": "false",
        "emit.offset-syncs.enabled": "false",
        "sync.group.offsets.enabled": "false",
        "refresh.groups.enabled": "false",
        "sync.topic.acls.enabled": "false",
        "sync.topic.configs.enabled": "false",
        "refresh.topics.interval.seconds": str(refresh_topics_s),
        # Headers cross as they are: the bus's headers (consumer, grant id, schema) travel with the record.
        "dedicated.mode.enable.internal.rest": "false",
        # Every plugin on the classpath has a ServiceLoader manifest: skip the slow reflective scan.
        "plugin.discovery": "service_load",
    }
    for source, target in ((plan.district, CITY), (CITY, plan.district)):
        topics = plan.up if target == CITY else plan.down
        props[f"{source}->{target}.enabled"] = "true" if topics else "false"
        if topics:
            props[f"{source}->{target}.topics"] = topics_regex(topics)
    return props


def write_properties(path: Path, props: dict[str, str]) -> None:
    """A Java properties file (backslashes escaped), readable by the owner only: it holds passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        for key, value in props.items():
            handle.write(f"{key}={value.replace(chr(92), chr(92) * 2)}\n")


def _status_ends(consumer: Consumer, topic: str) -> dict[int, int]:
    """Partition -> end offset of the status topic now (empty before MirrorMaker 2 first made it)."""
    found = consumer.list_topics(topic, timeout=5).topics.get(topic)
    if found is None or found.error is not None:
        return {}
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in found.partitions}


def _last_task_state(consumer: Consumer, topic: str, since: dict[int, int]) -> str:
    """The source task's last state written at or after ``since`` (this process's run, not an earlier one's)."""
    metadata = consumer.list_topics(topic, timeout=5)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return "unknown"
    state = "unknown"
    for partition in found.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
        low = max(low, since.get(partition, 0))
        if high <= low:
            continue
        consumer.assign([TopicPartition(topic, partition, low)])
        position = low
        while position < high:
            msg = consumer.poll(2.0)
            if msg is None:
                break
            position = (msg.offset() or position) + 1
            value = msg.value()
            if msg.error() is None and msg.key() == _SOURCE_TASK_KEY and value:
                state = str(json.loads(value).get("state", "unknown"))
    return state


@dataclass(frozen=True, slots=True)
class MirrorHealth:
    running: bool
    # (source, target) -> the source task's state, e.g. RUNNING, FAILED, or "unknown".
    flows: dict[tuple[str, str], str]

    @property
    def mirroring(self) -> bool:
        return self.running and bool(self.flows) and all(state == "RUNNING" for state in self.flows.values())


class MirrorMaker:
    """One district's MirrorMaker 2. ``city`` and ``district`` are its own principals (access.py)."""

    def __init__(
        self, settings: FederationSettings, plan: Federation, city: KafkaAccess, district: KafkaAccess
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.accesses = {CITY: city, plan.district: district}
        self.config_path = settings.data_dir / f"mm2-{plan.district}.properties"
        self.log_path = settings.data_dir / f"mm2-{plan.district}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._since: dict[str, dict[int, int]] = {}

    def start(self) -> MirrorMaker:
        if not self.plan.flows():
            raise MirrorError("nothing to mirror: no class federated up and no district system to serve down")
        libs = resolve_jars(self.settings.jar_settings(), "mirror")
        props = mirror_properties(
            self.plan, self.accesses[CITY], self.accesses[self.plan.district], self.settings.refresh_topics_s
        )
        write_properties(self.config_path, props)
        self._spawn(libs)
        try:
            self.wait_mirroring(self.settings.start_timeout_s)
        except MirrorError:
            self.stop()
            raise
        return self

    def _mark_status(self) -> None:
        """Remembers where each status topic ends before a start: a RUNNING written by an earlier run
        (one that was killed writes nothing on its way out) must not pass for this one's."""
        for target in {t for _s, t in self.plan.flows()}:
            access = self.accesses[target]
            consumer = access.consumer({"group.id": access.private_group("health"), "enable.auto.commit": False})
            try:
                self._since[target] = _status_ends(consumer, self.plan.internal_topic(target, "status"))
            except KafkaException as exc:
                raise MirrorError(f"cannot read MirrorMaker 2's status topic on {target}: {exc}") from exc
            finally:
                consumer.close()

    def _spawn(self, libs: Path) -> None:
        self._mark_status()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed after spawn
        try:
            self._process = subprocess.Popen(
                java_command(self.settings.jar_settings(), libs, MAIN_CLASS, str(self.config_path)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()
        print(f"sharebus: MirrorMaker 2 for {self.plan.district} starting (log: {self.log_path})", flush=True)

    def wait_mirroring(self, timeout_s: float) -> MirrorHealth:
        """Until every flow's source task runs; raises with the log tail when it exits or times out."""
        deadline = time.monotonic() + timeout_s
        health = self.health()
        while not health.mirroring:
            if not health.running:
                raise MirrorError(
                    f"MirrorMaker 2 exited during start-up. Last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise MirrorError(
                    f"MirrorMaker 2 did not report its flows running within {timeout_s:.0f}s ({health.flows}). "
                    f"Last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(1.0)
            health = self.health()
        return health

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def health(self) -> MirrorHealth:
        running = self.is_running()
        flows = {(s, t): (self._task_state(t) if running else "stopped") for s, t in self.plan.flows()}
        return MirrorHealth(running, flows)

    def _task_state(self, target: str) -> str:
        """The last state the flow's source task wrote to its status topic on ``target``."""
        access = self.accesses[target]
        consumer = access.consumer({"group.id": access.private_group("health"), "enable.auto.commit": False})
        try:
            return _last_task_state(consumer, self.plan.internal_topic(target, "status"), self._since.get(target, {}))
        except KafkaException as exc:
            return f"unreadable: {exc}"
        finally:
            consumer.close()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        process, self._process = self._process, None
        return stop_process(process, timeout_s)

    def kill(self) -> None:
        """SIGKILL, as a crash would end it (for fault tests)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def restart(self) -> MirrorHealth:
        """Stops and starts again on the same configuration and Connect state: it resumes where it was."""
        self.stop()
        self._spawn(resolve_jars(self.settings.jar_settings(), "mirror"))
        try:
            return self.wait_mirroring(self.settings.start_timeout_s)
        except MirrorError:
            self.stop()
            raise

    def __enter__(self) -> MirrorMaker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["MirrorError", "MirrorHealth", "MirrorMaker", "mirror_properties"]
