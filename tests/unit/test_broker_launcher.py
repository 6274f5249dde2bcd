from __future__ import annotations

from sharebus_broker.launcher import new_cluster_id


def test_cluster_ids_never_look_like_options() -> None:
    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
