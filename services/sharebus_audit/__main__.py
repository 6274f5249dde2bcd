"""``python -m sharebus_audit``: run the auditor until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import sys

from prometheus_client import REGISTRY

from sharebus_audit.auditor import Auditor
from sharebus_audit.settings import AuditorSettings
from sharebus_core.exposition import lean_exposition
from sharebus_core.probe_server import serve_probes
from sharebus_core.scrape_auth import ScrapeTokenError
from sharebus_core.signing import SigningKeyError
from sharebus_core.topics import TopicNames
from sharebus_provision import audit_topics, ensure_topics


def main() -> int:
    lean_exposition()
    settings = AuditorSettings()
    logging.basicConfig(level="INFO", format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    topics = TopicNames(settings.namespace)
    try:
        token = settings.scrape_auth()  # /metrics answers only its holders: no token, no start
        auditor = Auditor(settings)
    except (SigningKeyError, ScrapeTokenError) as exc:
        print(f"sharebus-auditor: refusing to start: {exc}", file=sys.stderr)
        return 2
    ensure_topics(settings.kafka, audit_topics(topics, settings.retention_hours, settings.facts_retention_hours))
    probes = {"/healthz": lambda: (200, {"status": "ok"})}
    serve_probes(settings.metrics_host, settings.metrics_port, REGISTRY, probes, "auditor-http", token)
    signal.signal(signal.SIGTERM, lambda *_: auditor.stop.set())
    signal.signal(signal.SIGINT, lambda *_: auditor.stop.set())
    print(
        f"sharebus-auditor: chaining {topics.audit_facts} into {topics.audit}, anchors signed onto "
        f"{topics.audit_anchors} every {settings.anchor_interval_s:g} s; metrics on "
        f"http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        flush=True,
    )
    auditor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
