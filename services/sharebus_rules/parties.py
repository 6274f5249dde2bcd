"""Who the parties of a grant or a dispute are now: the catalogue's word, not the log's of the day."""

from __future__ import annotations

from sharebus_core.catalogue import Catalogue


def current_parties(
    catalogue: Catalogue, data_class: str, provider: str, consumer: str, consumer_department: str
) -> tuple[str, str]:
    """(provider, consumer department) as the catalogue names them now.

    A grant or a dispute event records the parties of its day; a class handed to another department
    since (a reorganisation, a corrected catalogue entry) is that department's to decide and answer
    for. The former provider must no longer see it: it could approve access to data it no longer
    provides, or confirm a dispute whose correction it can never publish. A class or system the
    catalogue no longer has keeps what was recorded.
    """
    entry = catalogue.data_classes.get(data_class)
    return (
        entry.provider if entry is not None else provider,
        catalogue.department_of_system.get(consumer, consumer_department),
    )
