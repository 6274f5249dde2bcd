"""The SDK's dispute client against answers that are not the gateway's: its own error, never a traceback."""

from __future__ import annotations

import json

import httpx
import pytest

from sharebus_sdk import Disputes
from sharebus_sdk.disputes import DisputeError


def client(answer: httpx.Response) -> Disputes:
    disputes = Disputes("http://gateway", "key")
    disputes._client = httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(lambda _r: answer))
    return disputes


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>a proxy's sign-in page</html>"),
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(200, json=5),
        httpx.Response(200, json=["not a dispute"]),
    ],
)
def test_an_answer_that_is_not_the_gateways_is_a_dispute_error(answer: httpx.Response) -> None:
    with client(answer) as disputes:
        with pytest.raises(DisputeError) as refused:
            disputes.list()
        assert refused.value.status == 502
        with pytest.raises(DisputeError):
            disputes.show("d-1")


def test_a_gateway_answer_is_flattened() -> None:
    view = {"dispute": {"dispute_id": "d-1"}, "state": "open", "overdue": False}
    with client(httpx.Response(200, json=[view])) as disputes:
        assert disputes.list() == [{"dispute_id": "d-1", "state": "open", "overdue": False}]


def test_a_record_id_received_in_several_classes_is_disputed_with_its_class() -> None:
    """Record ids are unique within a class only: the gateway asks for the class when the system
    received the id in several (422 until it is named), so the SDK must be able to send it."""
    sent: list[bytes] = []
    view = {"dispute": {"dispute_id": "d-1"}, "state": "open", "overdue": False}

    def gateway(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(201, json=view)

    disputes = Disputes("http://gateway", "key")
    disputes._client = httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(gateway))
    with disputes:
        disputes.open("r-1", ["amount"], "wrong", data_class="301001002/000001")
        disputes.open("r-2", ["amount"], "wrong")
    assert [json.loads(body).get("data_class") for body in sent] == ["301001002/000001", None]
    assert "data_class" not in json.loads(sent[1])  # an older gateway takes the body as it was
