"""Session-wide fixtures. One real Kafka broker serves the whole test session.

Set ``SHAREBUS_BOOTSTRAP`` to run against an existing cluster instead. When the broker cannot
start, every test that needs it errors with the broker's log tail: it never skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sharebus_broker import BrokerSettings, KafkaBroker


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("SHAREBUS_BOOTSTRAP")
    if existing:
        yield existing
        return
    data_dir: Path = tmp_path_factory.mktemp("kafka") / "data"
    settings = BrokerSettings(port=0, controller_port=0, data_dir=data_dir, heap="768m")
    with KafkaBroker(settings) as broker:
        yield broker.bootstrap
