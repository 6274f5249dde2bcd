"""What the e2e tests of ``sharebus run`` check once it has stopped: nothing of it is left."""

from __future__ import annotations

from pathlib import Path

from sharebus_broker.launcher import port_in_use


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def assert_stopped_cleanly(code: int, output: str, ports: dict[str, int], work: Path) -> None:
    """Exit 0, its own word that nothing is left, every port closed, and no process naming ``work``
    (the run's children, and MirrorMaker 2's JVM, all name their files under it)."""
    assert code == 0, output[-4000:]
    assert "stopped; no processes left behind" in output
    for name, port in ports.items():
        assert not port_in_use("127.0.0.1", port), f"{name} port {port} still open"
    assert processes_mentioning(str(work)) == []
