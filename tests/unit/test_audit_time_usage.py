"""``sharebus audit who --since/--until`` with a time it cannot read is a usage error, not a traceback."""

from __future__ import annotations

import pytest

from sharebus_cli.main import main


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "99999999999w"])
def test_an_unreadable_time_is_a_usage_error_naming_the_format(
    option: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit", "who", "--class", "301001001/000001", option, text])
    # argparse's usage errors exit 2, as every other one of the CLI's.
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}: {text!r} is not a span back from now (12h, 7d, 2w) or an ISO time" in error
    assert "Traceback" not in error
