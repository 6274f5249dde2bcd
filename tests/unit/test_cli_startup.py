"""A command imports its own modules only: a refused `sharebus backfill request` answered in seconds
less once it stopped importing FastAPI, SQLAlchemy, the gateway, the portal and the report first."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from sharebus_cli.main import COMMANDS, _parser
from tests.support.http_stub import QuietHandler, serving

REFUSAL = "refused: unknown data class '999999999/000001': it is not in the catalogue"
# What the other commands need, and a backfill request does not.
HEAVY = ("fastapi", "sqlalchemy", "starlette", "argon2", "sharebus_gateway", "sharebus_portal", "sharebus_report")

# Runs the command in a fresh interpreter, then says which of HEAVY it had imported.
_PROGRAM = """
import json, sys
from sharebus_cli.main import main
code = main(sys.argv[2:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.fixture
def refusing_gateway() -> Iterator[str]:
    """A gateway that knows the key (TAX's tax-levy) and refuses the backfill as the real one does."""

    class Handler(QuietHandler):
        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer(200, {"system": "tax-levy", "department": "TAX", "key_id": "k1"})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._answer(422, {"detail": REFUSAL})

    with serving(Handler) as url:
        yield url


def test_a_refused_backfill_request_says_why_exits_3_and_imports_no_other_commands_modules(
    refusing_gateway: str,
) -> None:
    argv = ["backfill", "request", "--class", "999999999/000001", "--system", "tax-levy", "--as", "TAX"]
    argv += ["--gateway", refusing_gateway]
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, json.dumps(HEAVY), *argv],
        env={"SHAREBUS_API_KEY": "sbk_not_checked_here", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"code": 3, "heavy": []}
    assert done.stderr.strip() == f"sharebus: {REFUSAL}"


def test_help_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    listing = capsys.readouterr().out
    assert all(name in listing for name in (*COMMANDS, "run", "catalogue"))
