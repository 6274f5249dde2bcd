"""The bus's scrape token in tests: every service's /metrics (and the detail of its probes) answers only it.

``scrape_token_env`` (a session fixture every test gets, registered in tests/conftest.py) writes one token
file for the session and names it in ``SHAREBUS_SCRAPE_TOKEN_FILE``, so that every service a test starts
(whose environment is the test process's plus its own) demands it, and every scraper of the tests
(``metric()``, ``scraped()``) sends it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sharebus_core.scrape_auth import TOKEN_ENV, TOKEN_FILE_ENV, ensure_scrape_token, scrape_headers


@pytest.fixture(scope="session", autouse=True)
def scrape_token_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's token file, named in the environment (unless the caller already names one)."""
    if os.environ.get(TOKEN_FILE_ENV) or os.environ.get(TOKEN_ENV):
        yield os.environ.get(TOKEN_FILE_ENV, "")
        return
    path = ensure_scrape_token(tmp_path_factory.mktemp("scrape") / "scrape-token")
    os.environ[TOKEN_FILE_ENV] = str(path)
    try:
        yield str(path)
    finally:
        os.environ.pop(TOKEN_FILE_ENV, None)


def scraped(url: str, **kwargs: Any) -> httpx.Response:
    """``GET url`` with the session's scrape token, as Prometheus asks a service."""
    headers = {**scrape_headers(), **kwargs.pop("headers", {})}
    return httpx.get(url, headers=headers, timeout=kwargs.pop("timeout", 5), **kwargs)
