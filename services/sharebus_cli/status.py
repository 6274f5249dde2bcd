"""The live line of counts: the router's counters (scraped) next to the demo's own."""

from __future__ import annotations

from collections import defaultdict

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sharebus_core.scrape_auth import scrape_headers

_WANTED = (
    "sharebus_records_received_total",
    "sharebus_records_total",
    "sharebus_denials_total",
    "sharebus_dead_letters_total",
    "sharebus_batches_released_total",
)


def scrape_totals(*metrics_urls: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Sums each sharebus counter over its labels and over the router workers; a worker that does not
    answer (or refuses the scrape token: ``headers``, default from SHAREBUS_SCRAPE_TOKEN_FILE) counts nothing."""
    headers = scrape_headers() if headers is None else headers
    texts = []
    for url in metrics_urls:
        try:
            response = httpx.get(url, timeout=1.0, headers=headers)
        except httpx.HTTPError:
            continue
        if response.status_code == 200:
            texts.append(response.text)
    totals: dict[str, float] = defaultdict(float)
    for family in (f for text in texts for f in text_string_to_metric_families(text)):
        for sample in family.samples:
            if sample.name in _WANTED:
                totals[sample.name] += sample.value
            if sample.name == "sharebus_records_received_total" and sample.labels.get("mode") == "periodic":
                totals["held"] += sample.value
            if sample.name == "sharebus_quality_records_total":
                totals[f"quality {sample.labels.get('result')}"] += sample.value
    return dict(totals)


def status_line(totals: dict[str, float], published: int, junk: int, received: int) -> str:
    return (
        f"published {published:>7} | junk {junk:>4} | routed {int(totals.get('sharebus_records_received_total', 0)):>7}"
        f" | delivered {int(totals.get('sharebus_records_total', 0)):>7}"
        f" | denied {int(totals.get('sharebus_denials_total', 0)):>6}"
        f" | dead letters {int(totals.get('sharebus_dead_letters_total', 0)):>4}"
        f" | subscribers received {received:>7}"
        f" | periodic held {int(totals.get('held', 0)):>6}"
        f" | batches released {int(totals.get('sharebus_batches_released_total', 0)):>4}"
        f" | quality flagged {int(totals.get('quality flagged', 0)):>4}"
        f" rejected {int(totals.get('quality rejected', 0)):>4}"
    )
