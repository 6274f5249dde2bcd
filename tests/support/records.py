"""Records of the fixture catalogue (tests/fixtures/catalogue), and publishing them as its provider."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sharebus_core.catalogue import load_catalogue
from sharebus_core.settings import BusSettings
from sharebus_sdk import Publisher, PublisherSettings

ENTERPRISE = "301001001/000001"
PENALTY = "301001002/000001"  # conditional, person_id_number sensitive
STATS = "301001004/000001"  # periodic (daily at 02:00 Asia/Shanghai), unconditional


def enterprise(seq: int) -> dict[str, Any]:
    """An enterprise registration record; ``seq`` identifies it in assertions."""
    return {
        "uscc": f"U{seq}",
        "name": "n",
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": dt.date(2020, 1, 1),
        "seq": seq,
        "note": None,
    }


def publish_enterprises(settings: BusSettings, seqs: Iterable[int]) -> None:
    """Publishes as AMR, the provider, through the SDK; trace ids are ``trace-<seq>``."""
    catalogue = load_catalogue(settings.catalogue_dir)
    with Publisher("AMR", PublisherSettings.model_validate(settings.model_dump()), catalogue) as pub:
        for seq in seqs:
            pub.publish(ENTERPRISE, enterprise(seq), trace_id=f"trace-{seq}")


def penalty(seq: int) -> dict[str, Any]:
    """An administrative penalty record (conditional class, with a resident ID to mask)."""
    return {
        "uscc": f"91500000MA{seq:07d}X",
        "person_id_number": "11010519491231002X",
        "amount": 100.0 + seq,
        "seq": seq,
    }


def stats(seq: int) -> dict[str, Any]:
    """A daily licence statistics record (periodic class)."""
    return {"district_code": "500103", "issued": seq, "seq": seq}


def publish_records(settings: BusSettings, class_code: str, records: Iterable[dict[str, Any]]) -> None:
    """Publishes records of one of AMR's classes as AMR, through the SDK."""
    catalogue = load_catalogue(settings.catalogue_dir)
    with Publisher("AMR", PublisherSettings.model_validate(settings.model_dump()), catalogue) as pub:
        for record in records:
            pub.publish(class_code, record)
