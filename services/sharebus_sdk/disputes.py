"""``Disputes``: a system disputes records it received, and a provider answers, through the gateway.

Disputes are authenticated actions of one system, so they go through the gateway with that system's
API key (the same key as ``sharebus dispute`` and the HTTP API), never straight to Kafka: only the
gateway can tell, from the audit trail, whether the system received the record.

    with Disputes("http://127.0.0.1:8080", api_key) as disputes:
        opened = disputes.open(delivery.record_id, ["registered_capital"], "ten times too high")
        ...
        disputes.answer(opened["dispute_id"], "confirm", "a typing error", correction=fixed_record)
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from sharebus_core.errors import SharebusError


class DisputeError(SharebusError):
    """The gateway refused or failed a dispute call: ``status`` is its HTTP status, ``detail`` its reason
    (403: the system never received the record, or is not the provider; 404: no such dispute visible;
    409: not in a state that allows it; 503: try again later)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail or f"HTTP {response.status_code}")


class Disputes:
    """Each method returns the dispute as the gateway shows it: the latest event's fields (contract B)
    plus ``state`` and ``overdue``."""

    def __init__(self, gateway_url: str, api_key: str | SecretStr, timeout_s: float = 30.0) -> None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._client = httpx.Client(
            base_url=gateway_url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=timeout_s
        )

    def __enter__(self) -> Disputes:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._client.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise DisputeError(503, f"the gateway cannot be reached: {exc}") from exc
        if response.status_code >= 400:
            raise DisputeError(response.status_code, _detail(response))
        try:
            return response.json()
        except ValueError as exc:
            # A URL that is not the gateway's (a proxy's page, another service) answers 200 with HTML.
            raise DisputeError(502, f"the answer from {response.url} is not the gateway's (not JSON)") from exc

    @staticmethod
    def _flat(view: Any) -> dict[str, Any]:
        try:
            return {**view["dispute"], "state": view["state"], "overdue": view["overdue"]}
        except (KeyError, TypeError) as exc:
            raise DisputeError(502, f"the answer is not a dispute as the gateway shows one: {exc!r}") from exc

    @classmethod
    def _flats(cls, views: Any) -> list[dict[str, Any]]:
        if not isinstance(views, list):
            raise DisputeError(502, "the answer is not a list of disputes as the gateway shows them")
        return [cls._flat(v) for v in views]

    def open(self, record_id: str, fields: list[str], reason: str, data_class: str | None = None) -> dict[str, Any]:
        """Disputes a record this system received (its ``Delivery.record_id``). Record ids are unique
        within a class only: ``data_class`` (``Delivery.data_class``) is needed when this system
        received the id in several classes, and is always safe to send."""
        body: dict[str, Any] = {"record_id": record_id, "fields": fields, "reason": reason}
        if data_class is not None:
            body["data_class"] = data_class
        return self._flat(self._call("POST", "/v1/disputes", body))

    def inbox(self, state: str | None = None, overdue: bool = False) -> list[dict[str, Any]]:
        """Disputes of records this system's department provides, newest first, with their deadlines."""
        params: dict[str, Any] = {"overdue": overdue, **({"state": state} if state else {})}
        return self._flats(self._call("GET", "/v1/disputes/inbox", params=params))

    def list(
        self, role: Literal["provider", "consumer"] | None = None, state: str | None = None, overdue: bool = False
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"overdue": overdue, **({"state": state} if state else {})}
        if role:
            params["role"] = role
        return self._flats(self._call("GET", "/v1/disputes", params=params))

    def show(self, dispute_id: str) -> dict[str, Any]:
        return self._flat(self._call("GET", f"/v1/disputes/{quote(dispute_id, safe='')}"))

    def answer(
        self,
        dispute_id: str,
        decision: Literal["confirm", "reject"],
        answer: str,
        correction: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The provider's answer; with ``confirm`` and a ``correction`` (the whole corrected record, JSON
        as for publishing), the correction is published and the dispute becomes ``corrected``."""
        body = {"decision": decision, "answer": answer, "correction": correction}
        return self._flat(self._call("POST", f"/v1/disputes/{quote(dispute_id, safe='')}/answer", body))

    def correct(self, dispute_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """Publishes the correction of a confirmed dispute (after an ``answer`` without one)."""
        return self._flat(
            self._call("POST", f"/v1/disputes/{quote(dispute_id, safe='')}/correction", {"record": record})
        )
