"""``sharebus freshness`` on input it cannot answer for (no Kafka)."""

from __future__ import annotations

import datetime as dt

import pytest

from sharebus_cli import freshness_cmd
from sharebus_cli.main import main
from sharebus_core.catalogue import load_catalogue
from sharebus_rules.freshness import Freshness
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


def test_overdue_only_still_counts_every_class_it_looked_at(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--overdue`` narrows the rows, not the total: "0 of 0 class(es) overdue" read as if nothing was checked."""
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    now = dt.datetime.now(dt.UTC)
    codes = sorted(catalogue.data_classes)[:3]
    report = [
        Freshness(
            provider=catalogue.data_classes[code].provider,
            data_class=code,
            mode="realtime",
            last_record=now,
            age=dt.timedelta(seconds=5),
            allowed=dt.timedelta(hours=24),
            overdue=False,
        )
        for code in codes
    ]
    monkeypatch.setattr(freshness_cmd, "freshness_report", lambda *args, **kwargs: report)
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    assert main(["freshness", "--overdue"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 of 3 class(es) overdue"
