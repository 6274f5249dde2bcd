from __future__ import annotations

import socket

from sharebus_core.ports import _bindable, free_port


def test_ports_are_below_the_ephemeral_range_and_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(20000 <= p < 32768 for p in ports)


def test_a_port_something_listens_on_is_not_bindable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        assert not _bindable("127.0.0.1", held.getsockname()[1])
    assert _bindable("127.0.0.1", free_port())
