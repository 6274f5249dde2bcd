"""The CLI's department actions go through the gateway, with the caller's API key.

The department a command acts for is the key's (``GET /v1/whoami``), so the deciding principal comes
from the authentication, never from a typed word. ``--as DEPT`` stays accepted as a check: when it
names another department the command stops before it changes anything.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from sharebus_core.errors import SharebusError

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080"


class GatewayCallError(SharebusError):
    """The gateway refused or failed a call; ``exit_code`` is the CLI's code for it."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @property
    def exit_code(self) -> int:
        if self.status == 404:
            return 4
        if self.status in (400, 403, 409, 422):
            return 3  # refused, as the workflow's own refusals
        if self.status == 401:
            return 7
        return 6  # unavailable, rate-limited or failed: try again later


class CliGatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("api_key", "SHAREBUS_API_KEY"))
    gateway_url: str = Field(
        default=DEFAULT_GATEWAY_URL, validation_alias=AliasChoices("gateway_url", "SHAREBUS_GATEWAY_URL")
    )


class Identity(BaseModel):
    system: str
    department: str
    key_id: str


def add_credential_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key-file",
        type=Path,
        help="a file holding your system's gateway API key (default: the SHAREBUS_API_KEY variable)",
    )
    parser.add_argument("--gateway", help=f"the gateway's URL (default: SHAREBUS_GATEWAY_URL or {DEFAULT_GATEWAY_URL})")


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(str(item.get("msg", item)) for item in detail if isinstance(item, dict))
    return str(detail or f"HTTP {response.status_code}")


class GatewayClient:
    def __init__(self, url: str, api_key: SecretStr, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._api_key = api_key
        self._timeout_s = timeout_s

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> GatewayClient:
        settings = CliGatewaySettings()
        key = settings.api_key
        key_file: Path | None = getattr(args, "api_key_file", None)
        if key_file is not None:
            try:
                key = SecretStr(key_file.read_text().strip())
            except (OSError, UnicodeDecodeError) as exc:
                raise GatewayCallError(401, f"cannot read the API key file {key_file}: {exc}") from exc
        if key is None or not key.get_secret_value():
            raise GatewayCallError(
                401,
                "no API key: department actions need your system's gateway key "
                "(set SHAREBUS_API_KEY or pass --api-key-file; `sharebus apikey issue` makes one)",
            )
        return cls(getattr(args, "gateway", None) or settings.gateway_url, key)

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}
        try:
            with httpx.Client(base_url=self.url, headers=headers, timeout=self._timeout_s) as client:
                response = client.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise GatewayCallError(503, f"the gateway at {self.url} cannot be reached: {exc}") from exc
        if response.status_code >= 400:
            raise GatewayCallError(response.status_code, _detail(response))
        try:
            return response.json()
        except ValueError as exc:
            # Not the gateway (the portal, a proxy's page): said so, never a traceback.
            raise GatewayCallError(
                502, f"{self.url} did not answer with JSON (HTTP {response.status_code}): is it the gateway's URL?"
            ) from exc

    def whoami(self) -> Identity:
        answer = self.call("GET", "/v1/whoami")
        try:
            return Identity.model_validate(answer)
        except ValidationError as exc:
            raise GatewayCallError(
                502, f"{self.url} answered /v1/whoami with {str(answer)[:200]}, not the identity of an API key"
            ) from exc

    def acting_as(self, department: str | None) -> Identity:
        """The key's identity; refuses (before anything is written) when ``--as`` names another department."""
        who = self.whoami()
        if department is not None and department != who.department:
            raise GatewayCallError(
                403,
                f"--as {department}: the API key acts for {who.department} (system {who.system}), "
                f"not {department}; nothing was done",
            )
        return who


def segment(value: str) -> str:
    """One path segment, escaped (grant and request ids are typed by users)."""
    return quote(value, safe="")


__all__ = ["CliGatewaySettings", "GatewayCallError", "GatewayClient", "Identity", "add_credential_arguments", "segment"]
