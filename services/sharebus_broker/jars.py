"""Resolves the broker's jars from Maven Central into the user's cache, once per Kafka version."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

from sharebus_broker.settings import DEPLOY_DIR, BrokerSettings
from sharebus_core.errors import SharebusError

_COMPLETE_MARKER = ".complete"


class JarResolutionError(SharebusError, RuntimeError):
    pass


def libs_dir(settings: BrokerSettings) -> Path:
    return settings.cache_dir / f"kafka-{settings.kafka_version}" / "libs"


def resolve_jars(settings: BrokerSettings) -> Path:
    """Returns the directory holding the broker classpath, running Maven only when it is missing.

    A marker file is written last, so an interrupted download is redone instead of trusted, and a
    file lock keeps two concurrent runs (a test session and ``make run``) from racing on it.
    """
    target = libs_dir(settings)
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
            str(DEPLOY_DIR / "pom.xml"),
            "dependency:copy-dependencies",
            f"-Dkafka.version={settings.kafka_version}",
            f"-DoutputDirectory={target}",
            f"-Dmaven.repo.local={settings.cache_dir / 'm2'}",
            "-DincludeScope=runtime",
        ]
        print(f"sharebus: resolving Apache Kafka {settings.kafka_version} from Maven Central into {target}")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-3000:]
            raise JarResolutionError(f"mvn failed ({result.returncode}) resolving Kafka jars:\n{tail}")
        if not any(target.glob(f"kafka_2.13-{settings.kafka_version}.jar")):
            raise JarResolutionError(f"mvn finished but {target} holds no kafka_2.13 jar")
        (target / _COMPLETE_MARKER).write_text(settings.kafka_version)
    return target
