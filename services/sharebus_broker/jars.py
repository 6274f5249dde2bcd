"""Resolves Kafka's jars from Maven Central into the user's cache, once per Kafka version and component.

Two components: the broker (``deploy/kafka/pom.xml``) and MirrorMaker 2 (``deploy/kafka/mirror-pom.xml``,
run by ``sharebus_federation``). Each has its own directory, so fetching one never disturbs the other.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path
from typing import Literal

from sharebus_broker.settings import DEPLOY_DIR, BrokerSettings
from sharebus_core.errors import SharebusError

_COMPLETE_MARKER = ".complete"

Component = Literal["broker", "mirror"]
# The pom, the directory under ``kafka-<version>`` and a jar whose presence proves the resolution.
_COMPONENTS: dict[Component, tuple[str, str, str]] = {
    "broker": ("pom.xml", "libs", "kafka_2.13-{version}.jar"),
    "mirror": ("mirror-pom.xml", "mirror-libs", "connect-mirror-{version}.jar"),
}


class JarResolutionError(SharebusError, RuntimeError):
    pass


def libs_dir(settings: BrokerSettings, component: Component = "broker") -> Path:
    return settings.cache_dir / f"kafka-{settings.kafka_version}" / _COMPONENTS[component][1]


def resolve_jars(settings: BrokerSettings, component: Component = "broker") -> Path:
    """Returns the directory holding the component's classpath, running Maven only when it is missing.

    A marker file is written last, so an interrupted download is redone instead of trusted, and a
    file lock keeps two concurrent runs (a test session and ``make run``) from racing on it.
    """
    pom, _, proof = _COMPONENTS[component]
    target = libs_dir(settings, component)
    if (target / _COMPLETE_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _COMPLETE_MARKER).exists():
            return target
        if shutil.which("mvn") is None:
            raise JarResolutionError("Maven ('mvn') is not on PATH; it is needed to fetch the Kafka jars")
        shutil.rmtree(target, ignore_errors=True)
        command = [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(DEPLOY_DIR / pom),
            "dependency:copy-dependencies",
            f"-Dkafka.version={settings.kafka_version}",
            f"-DoutputDirectory={target}",
            f"-Dmaven.repo.local={settings.cache_dir / 'm2'}",
            "-DincludeScope=runtime",
        ]
        print(
            f"sharebus: resolving Apache Kafka {settings.kafka_version} ({component}) from Maven Central into {target}"
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-3000:]
            raise JarResolutionError(f"mvn failed ({result.returncode}) resolving Kafka jars:\n{tail}")
        if not any(target.glob(proof.format(version=settings.kafka_version))):
            raise JarResolutionError(
                f"mvn finished but {target} holds no {proof.format(version=settings.kafka_version)}"
            )
        (target / _COMPLETE_MARKER).write_text(settings.kafka_version)
    return target
