"""The router's ``sharebus_grants{state}`` gauge counts grants as every reader shows them (``shown_state``).

An automatic grant whose class is no longer unconditional, or all of whose fields are sensitive now, is one
the router delivers nothing under: the gauge must count it as ``lapsed``, not ``approved``, against the
router's own catalogue.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from sharebus_core.catalogue import Catalogue, ShareType
from sharebus_core.grants import Grant, GrantState
from sharebus_router.grant_metrics import GrantCollector
from tests.unit.test_automatic_grants import CATALOGUE, LATER, automatic, changed


def gauge(grants: list[Grant], catalogue: Catalogue) -> dict[str, float | None]:
    registry = CollectorRegistry()
    registry.register(GrantCollector(lambda: grants, lambda: LATER, 10, catalogue=lambda: catalogue))
    return {s.value: registry.get_sample_value("sharebus_grants", {"state": s.value}) for s in GrantState}


def test_the_grant_gauge_counts_a_lapsed_automatic_grant_as_lapsed_not_approved() -> None:
    conditional = changed(share_type=ShareType.CONDITIONAL)
    counted = gauge([automatic()], conditional)
    assert (counted["approved"], counted["lapsed"]) == (0, 1)
    # Every field of it sensitive now: lapsed too, though the class is still unconditional.
    narrowed = changed(sensitive_fields=("legal_rep_name",))
    counted = gauge([automatic(fields=["legal_rep_name"])], narrowed)
    assert (counted["approved"], counted["lapsed"]) == (0, 1)


def test_the_grant_gauge_counts_an_honoured_automatic_grant_as_approved_and_exports_every_state() -> None:
    counted = gauge([automatic()], CATALOGUE)
    assert (counted["approved"], counted["lapsed"]) == (1, 0)
    assert all(value is not None for value in counted.values()), counted  # one series per state, 0 included
