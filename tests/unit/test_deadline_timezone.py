"""Working-day deadlines are counted on the city's calendar (Asia/Shanghai, UTC+8), not on UTC's.

They used to be counted on the weekdays of UTC: an application made at 01:00 on a Friday in Chongqing
(17:00 on Thursday, UTC) got Friday as its first working day, and one made at 01:00 on a Saturday (17:00 on
Friday, UTC) lost its Monday, which became the deadline's "Tuesday"; days left were counted on UTC dates.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from sharebus_core.catalogue import load_catalogue
from sharebus_core.deadline_zone import deadline_zone
from sharebus_core.grants import Grant
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import ControlKeys, Signer, Verifier
from sharebus_core.topics import TopicNames
from sharebus_disputes import service as dispute_service
from sharebus_disputes.settings import DisputeSettings
from sharebus_grants import GrantService, GrantsSettings
from sharebus_rules import disputes
from sharebus_rules.grant_workflow import add_working_days, is_overdue, working_days_left
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.test_grant_service import PENALTY, log  # noqa: F401 - the in-memory grants log fixture
from tests.unit.test_grant_workflow import application

UTC = dt.UTC
# 17:00 UTC on Friday 20 November 2026 is 01:00 on Saturday 21 November in Chongqing.
FRIDAY_EVENING_UTC = dt.datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
# 17:00 UTC on Thursday 19 November is 01:00 on Friday 20 November in Chongqing.
THURSDAY_EVENING_UTC = dt.datetime(2026, 11, 19, 17, 0, tzinfo=UTC)


def test_a_working_day_is_a_weekday_on_the_citys_calendar() -> None:
    # Saturday 01:00 local: the first working day ends on Monday 01:00 local (Sunday 17:00 UTC).
    assert add_working_days(FRIDAY_EVENING_UTC, 1) == dt.datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
    # Friday 01:00 local: one working day on is Monday 01:00 local, not Friday evening UTC.
    assert add_working_days(THURSDAY_EVENING_UTC, 1) == dt.datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
    # The answer stays in the caller's time zone; the time zone is a parameter.
    assert add_working_days(THURSDAY_EVENING_UTC, 1).tzinfo is UTC
    assert add_working_days(THURSDAY_EVENING_UTC, 1, deadline_zone("UTC")) == dt.datetime(2026, 11, 20, 17, tzinfo=UTC)


def test_days_left_are_counted_on_local_dates() -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    applied = application(catalogue, now=dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC))  # Friday 17:00 local
    # 10 working days: Friday 4 December. At 17:00 UTC on Sunday it is Monday 01:00 in Chongqing: 9 left.
    sunday_evening_utc = dt.datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
    assert working_days_left(applied, sunday_evening_utc) == 9
    assert working_days_left(applied, sunday_evening_utc, tz=deadline_zone("UTC")) == 10


def test_the_grant_services_overdue_listing_follows_the_setting(log: dict[str, Grant]) -> None:  # noqa: F811
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    signer = Signer(Ed25519PrivateKey.generate())
    control = ControlKeys(Verifier([signer.public_key]), signer)
    clock = {"now": THURSDAY_EVENING_UTC}

    def grants(zone: str) -> GrantService:
        access = KafkaAccess(bootstrap="unused:9092")
        return GrantService(
            catalogue,
            access,
            "ns.grants",
            control=control,
            clock=lambda: clock["now"],
            answer_deadline_working_days=1,
            deadline_timezone=zone,
        )

    applied = grants("Asia/Shanghai").apply(
        department="TAX", requester="tax officer Li", consumer="tax-levy", data_class=PENALTY, purpose="p", scenario="s"
    )
    # Saturday noon UTC (20:00 local): past Friday evening UTC, but Chongqing's Monday has not begun.
    clock["now"] = dt.datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert not grants("Asia/Shanghai").is_overdue(applied)
    assert grants("UTC").is_overdue(applied)
    assert is_overdue(applied, clock["now"], 1, deadline_zone("UTC"))
    clock["now"] = dt.datetime(2026, 11, 22, 17, 1, tzinfo=UTC)  # Monday 01:01 local
    assert grants("Asia/Shanghai").is_overdue(applied)


def test_the_settings_default_to_the_city_and_refuse_an_unknown_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GrantsSettings().deadline_timezone == "Asia/Shanghai"
    assert DisputeSettings().deadline_timezone == "Asia/Shanghai"
    monkeypatch.setenv("SHAREBUS_GRANTS_DEADLINE_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("SHAREBUS_DISPUTES_DEADLINE_TIMEZONE", "UTC")
    assert GrantsSettings().deadline_timezone == "Europe/Berlin"
    assert DisputeSettings().deadline_zone == deadline_zone("UTC")
    monkeypatch.setenv("SHAREBUS_DISPUTES_DEADLINE_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValidationError, match="unknown time zone"):
        DisputeSettings()


def test_a_dispute_opened_late_on_a_utc_friday_is_due_on_the_citys_working_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dispute service's clock (the injectable skew file) stands at 17:00 UTC on Thursday.
    skew = tmp_path / "skew"
    skew.write_text(str(THURSDAY_EVENING_UTC.timestamp() - dt.datetime.now(UTC).timestamp()))
    written: list[disputes.DisputeEvent] = []
    monkeypatch.setattr(dispute_service, "write_event", lambda access, topic, event: written.append(event))
    settings = DisputeSettings(namespace="ns", index_dir=tmp_path, clock_skew_file=skew, deadline_working_days=1)
    service = dispute_service.DisputeService(
        load_catalogue(FIXTURE_CATALOGUE),
        KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT"),
        TopicNames("ns"),
        settings,
        lambda fact: None,
        CollectorRegistry(),
    )
    monkeypatch.setattr(service.index, "wait_current", lambda timeout_s: True)
    service.index._commit([("r-1", "tax-levy", PENALTY, "AMR", "t1")], {})
    try:
        opened = service.open(system="tax-levy", department="TAX", record_id="r-1", fields=["amount"], reason="x")
    finally:
        service.index.stop()
    # Opened at 01:00 on Friday in Chongqing: due at 01:00 on Monday there, not at Friday's end in UTC.
    assert abs(opened.opened_at - THURSDAY_EVENING_UTC) < dt.timedelta(seconds=30)
    assert opened.deadline - opened.opened_at == dt.timedelta(days=3)
    assert opened.deadline.astimezone(deadline_zone()).weekday() == 0


def test_a_grant_service_built_without_a_zone_takes_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway and the portal build their service with the deadline's days only: the zone comes from the setting."""
    signer = Signer(Ed25519PrivateKey.generate())
    control = ControlKeys(Verifier([signer.public_key]), signer)
    catalogue, access = load_catalogue(FIXTURE_CATALOGUE), KafkaAccess(bootstrap="unused:9092")
    assert GrantService(catalogue, access, "ns.grants", control=control).deadline_zone == deadline_zone()
    monkeypatch.setenv("SHAREBUS_GRANTS_DEADLINE_TIMEZONE", "UTC")
    assert GrantService(catalogue, access, "ns.grants", control=control).deadline_zone == deadline_zone("UTC")
