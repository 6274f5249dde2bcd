"""The scrape token: who may read a service's ``/metrics`` (and the detail of its health probes).

Metrics labels name departments, systems, classes and grants: bus metadata that is not for any local
user who can reach a port. So every service's ``/metrics`` answers only a caller presenting
``Authorization: Bearer <scrape token>``; anyone else gets 401 and a one-line body, nothing more.
``/healthz`` and ``/readyz`` stay open for orchestrators, but without the token they tell only the
status (``{"status": "ok"}`` or ``{"ready": ...}``): their details (closed classes, removed systems)
are for holders of the token (docs/security.md, "The probe and metrics doors").

One token for the whole bus: ``SHAREBUS_SCRAPE_TOKEN_FILE`` (a file holding it, as ``sharebus run``
writes it, 0600) or ``SHAREBUS_SCRAPE_TOKEN`` (the value; the file wins when both are set, as the Kafka
credentials file does). A service that serves ``/metrics`` refuses to start without one
(``ScrapeTokenError``, naming both variables): there is no open default.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from sharebus_core.errors import SharebusError

TOKEN_ENV = "SHAREBUS_SCRAPE_TOKEN"  # noqa: S105 - the variable's name, not a secret
TOKEN_FILE_ENV = "SHAREBUS_SCRAPE_TOKEN_FILE"  # noqa: S105 - the variable's name, not a secret
# Shorter tokens are refused: a guessable token is an open door.
MIN_TOKEN_CHARS = 24
# The whole answer to a scrape without the right token.
UNAUTHORIZED_BODY = b"401 Unauthorized: send Authorization: Bearer <the bus's scrape token>\n"
UNAUTHORIZED_HEADERS = {"Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": 'Bearer realm="sharebus"'}


class ScrapeTokenError(SharebusError, ValueError):
    """No usable scrape token is configured; the message names the variables."""


@dataclass(frozen=True, slots=True)
class ScrapeToken:
    """The bus's scrape token: checks a request's ``Authorization`` and makes a scraper's."""

    secret: SecretStr

    def admits(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value is ``Bearer <this token>`` (compared in constant time)."""
        if not authorization:
            return False
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        presented = credential.strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(presented, self.secret.get_secret_value().encode())

    @property
    def headers(self) -> dict[str, str]:
        """What a scraper sends."""
        return {"Authorization": f"Bearer {self.secret.get_secret_value()}"}


def _checked(value: str, where: str) -> ScrapeToken:
    token = value.strip()
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token) or not token.isprintable():
        raise ScrapeTokenError(
            f"the scrape token in {where} is not usable: it must be at least {MIN_TOKEN_CHARS} printable "
            "characters without spaces (sharebus run makes one with secrets.token_urlsafe(32))"
        )
    return ScrapeToken(SecretStr(token))


def load_scrape_token(token: SecretStr | None, token_file: Path | None) -> ScrapeToken:
    """The configured token (the file wins); raises ``ScrapeTokenError`` naming the variables when none is usable."""
    if token_file is not None:
        try:
            text = token_file.read_text()
        except OSError as exc:
            raise ScrapeTokenError(f"cannot read the scrape token ({TOKEN_FILE_ENV}={token_file}): {exc}") from exc
        return _checked(text, f"{TOKEN_FILE_ENV} ({token_file})")
    if token is not None:
        return _checked(token.get_secret_value(), TOKEN_ENV)
    raise ScrapeTokenError(
        f"no scrape token: set {TOKEN_FILE_ENV} to a file holding the bus's scrape token (or {TOKEN_ENV}); "
        "/metrics answers only Authorization: Bearer <token>, and a service does not start without one"
    )


def scrape_token_from_env(environ: Mapping[str, str] | None = None) -> ScrapeToken | None:
    """For scrapers (CLI, portal, tests, bench): the token the environment (``os.environ`` by default)
    names, or ``None`` when it names none. A named but unusable token raises ``ScrapeTokenError``."""
    environ = os.environ if environ is None else environ
    file, value = environ.get(TOKEN_FILE_ENV), environ.get(TOKEN_ENV)
    if not file and not value:
        return None
    return load_scrape_token(SecretStr(value) if value else None, Path(file) if file else None)


def scrape_headers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``Authorization`` header for a scrape, from the environment; empty when it names no token."""
    token = scrape_token_from_env(environ)
    return token.headers if token is not None else {}


def ensure_scrape_token(path: Path) -> Path:
    """Makes ``path`` hold a fresh token (0600) unless it already holds one; returns ``path``. Idempotent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        load_scrape_token(None, path)  # an unusable file is an error, never silently replaced
        return path
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path


__all__ = [
    "MIN_TOKEN_CHARS",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "UNAUTHORIZED_BODY",
    "UNAUTHORIZED_HEADERS",
    "ScrapeToken",
    "ScrapeTokenError",
    "ensure_scrape_token",
    "load_scrape_token",
    "scrape_headers",
    "scrape_token_from_env",
]
