"""Idempotency keys at the gateway: record ids from the key, and the memory of answered keys."""

from __future__ import annotations

import pytest

from sharebus_gateway.idempotency import AnsweredKeys, KeyReused, body_digest, record_ids

ENTERPRISE = "301001001/000001"


def test_record_ids_follow_the_idempotency_key_so_a_retry_through_another_gateway_is_dropped() -> None:
    first = record_ids("AMR", ENTERPRISE, "upload-42", 3)
    assert first == record_ids("AMR", ENTERPRISE, "upload-42", 3)
    assert len(set(first)) == 3
    assert set(first).isdisjoint(record_ids("AMR", ENTERPRISE, "upload-43", 3))
    assert set(first).isdisjoint(record_ids("EE", ENTERPRISE, "upload-42", 3))


def test_an_answered_key_is_remembered_per_department_and_another_body_is_refused() -> None:
    answered = AnsweredKeys(window=2)
    digest = body_digest([{"seq": 1}])
    assert answered.answered("AMR", ENTERPRISE, "k", digest) is None
    answered.remember("AMR", ENTERPRISE, "k", digest, ["r1"])
    assert answered.answered("AMR", ENTERPRISE, "k", digest) == ["r1"]
    assert answered.answered("EE", ENTERPRISE, "k", digest) is None
    with pytest.raises(KeyReused):
        answered.answered("AMR", ENTERPRISE, "k", body_digest([{"seq": 2}]))
    answered.remember("AMR", ENTERPRISE, "k2", digest, ["r2"])
    answered.remember("AMR", ENTERPRISE, "k3", digest, ["r3"])
    assert answered.answered("AMR", ENTERPRISE, "k", digest) is None  # the oldest left the window
