"""The CLI's department commands: what a user mistypes or a wrong URL answers is a clear error, not a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sharebus_cli.main import main
from tests.support.http_stub import QuietHandler, serving


def serving_body(body: bytes, content_type: str) -> Iterator[str]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as url:
        yield url


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_text("sbk_not_checked_here\n")
    return path


@pytest.fixture
def html_page() -> Iterator[str]:
    # A URL that is not the gateway (the portal, a proxy's sign-in page) answering 200 with HTML.
    yield from serving_body(b"<html><body>sign in</body></html>", "text/html")


@pytest.fixture
def other_json() -> Iterator[str]:
    yield from serving_body(b'{"status": "ok"}', "application/json")


def test_an_api_key_file_that_is_not_text_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "key"
    path.write_bytes("密钥".encode("gbk"))
    assert main(["grant", "list", "--api-key-file", str(path), "--gateway", "http://127.0.0.1:9"]) == 7
    assert "cannot read the API key file" in capsys.readouterr().err


def test_an_answer_that_is_not_json_is_named(
    key_file: Path, html_page: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grant", "list", "--api-key-file", str(key_file), "--gateway", html_page]) == 6
    assert "did not answer with JSON" in capsys.readouterr().err


def test_an_answer_that_is_not_an_identity_is_named(
    key_file: Path, other_json: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backfill", "list", "--api-key-file", str(key_file), "--gateway", other_json]) == 6
    assert "not the identity of an API key" in capsys.readouterr().err
