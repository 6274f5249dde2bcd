"""The subscriber's default group is named the same way in the docs, the monitor and the ACLs."""

from __future__ import annotations

import re
from pathlib import Path

import sharebus_monitor.collector
import sharebus_monitor.groups
from sharebus_access.acls import PatternType, ResourceType, desired_acls
from sharebus_core.catalogue import load_catalogue
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_core.topics import TopicNames
from sharebus_monitor.groups import GroupLabels

ROOT = Path(__file__).resolve().parents[2]
# The wrong order, as docs/metrics.md once had it: `<namespace>.sub.<system>`, `<ns>.sub.tax-levy`.
WRONG = re.compile(r"\.sub\.(<system>|tax-levy)")


def test_the_documented_default_group_is_one_the_system_may_use() -> None:
    rules = desired_acls(load_catalogue(DEFAULT_CATALOGUE_DIR), "sharebus")
    assert "`<namespace>.<system>.sub`" in (ROOT / "docs/metrics.md").read_text()
    assert any(
        r.principal == "User:sharebus.tax-levy"
        and r.resource_type is ResourceType.GROUP
        and r.pattern is PatternType.PREFIXED
        and "sharebus.tax-levy.sub".startswith(r.resource_name)
        for r in rules
    )
    # And the monitor labels that group as its own, as the docs say.
    assert GroupLabels(TopicNames("sharebus")).label("sharebus.tax-levy.sub") == "sharebus.tax-levy.sub"


def test_no_doc_or_monitor_docstring_names_the_group_the_other_way_round() -> None:
    texts = {path.name: path.read_text() for path in [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]}
    for module in (sharebus_monitor.collector, sharebus_monitor.groups):
        texts[module.__name__] = Path(str(module.__file__)).read_text()
    assert [name for name, text in texts.items() if WRONG.search(text)] == []
