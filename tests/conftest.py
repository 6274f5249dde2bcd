"""Session-wide fixtures. One real, secured Kafka broker serves the whole test session.

The broker runs as ``make run`` runs it: SASL_SSL with SCRAM-SHA-512, its own CA, and
``StandardAuthorizer`` denying by default. ``kafka_admin`` is the super user's access: tests use it
only to provision and to look; every service under test runs with its own principal.

Set ``SHAREBUS_BOOTSTRAP`` (with ``SHAREBUS_KAFKA_CREDENTIALS_FILE`` or username and password, and
``SHAREBUS_KAFKA_CA_FILE``, naming a super user) to run against an existing cluster instead. When the
broker cannot start, every test that needs it errors with the broker's log tail: it never skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from sharebus_broker import BrokerSettings, KafkaBroker
from sharebus_core import native
from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import BusSettings

# No test is timed: hypothesis's per-example deadline (200 ms) fails a property test on a loaded machine.
settings.register_profile("sharebus", deadline=None)
settings.load_profile("sharebus")


def pytest_configure(config: pytest.Config) -> None:
    """A compiled module older than its source would test code that is not the source's: stop before any test."""
    problem = native.check()
    if problem is not None:
        raise pytest.UsageError(problem)


# The ``browser`` fixture (Debian's chromium through selenium) for the web pages' tests,
# and the session's scrape token (every service's /metrics demands it: tests/support/scrape.py).
pytest_plugins = ["tests.support.browser", "tests.support.scrape"]


@pytest.fixture(scope="session")
def kafka_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaAccess]:
    if os.environ.get("SHAREBUS_BOOTSTRAP"):
        yield BusSettings().kafka
        return
    data_dir: Path = tmp_path_factory.mktemp("kafka") / "data"
    settings = BrokerSettings(port=0, controller_port=0, data_dir=data_dir, heap="768m")
    with KafkaBroker(settings) as broker:
        yield broker.admin_access
