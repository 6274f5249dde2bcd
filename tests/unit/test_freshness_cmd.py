"""``sharebus freshness`` on input it cannot answer for (no Kafka)."""

from __future__ import annotations

import pytest

from sharebus_cli.main import main
from tests.unit.fixtures import FIXTURE_CATALOGUE


def test_a_provider_the_catalogue_does_not_have_is_refused_not_reported_as_nothing_overdue(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    monkeypatch.setenv("SHAREBUS_BOOTSTRAP", "127.0.0.1:1")  # nothing listens: it must not get that far
    assert main(["freshness", "--provider", "AMX"]) == 2
    captured = capsys.readouterr()
    assert "no department 'AMX' in the catalogue" in captured.err
    assert "overdue" not in captured.out
