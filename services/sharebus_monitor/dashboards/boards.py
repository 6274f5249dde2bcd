"""The four dashboards ops live in. Every expression here runs against a real Prometheus in
tests/integration/test_observability.py, with the template variables set to real values.

Counters are per system (``consumer``) and per department (``provider``); a consumer's department comes
from the monitor's ``sharebus_catalogue_system_info{consumer, department}`` by a join on ``consumer``.
"""

from __future__ import annotations

from sharebus_monitor.dashboards.panels import Board, Query

RATE = "$__rate_interval"
RANGE = "$__range"
# Joins a per-consumer vector to the consuming system's department, keeping the left side's labels.
_OF_DEPT = 'on (consumer) group_left () sharebus_catalogue_system_info{department="$department"}'


def overview() -> Board:
    board = Board("sharebus-overview", "sharebus / overview", "What the bus moves, refuses and loses, right now")
    board.row("Traffic")
    board.graph(
        "Records delivered /s by mode",
        "Records delivered to consumer systems (one record to one system counts once)",
        "short",
        Query(f"sum by (mode) (rate(sharebus_records_total[{RATE}]))", "{{mode}}"),
    )
    board.graph(
        "Records received /s by mode",
        "Good records read from the providers' source topics",
        "short",
        Query(f"sum by (mode) (rate(sharebus_records_received_total[{RATE}]))", "{{mode}}"),
    )
    board.stat(
        "Calls today",
        "Calls since midnight: a real-time call is one record to one system; a periodic call is one batch",
        "short",
        Query(f"sum(increase(sharebus_calls_total[{RANGE}]))", "calls"),
        time_from="now/d",
    )
    board.stat(
        "Calls today by share type",
        "Unconditional shares against shares under a grant",
        "short",
        Query(f"sum by (share_type) (increase(sharebus_calls_total[{RANGE}]))", "{{share_type}}"),
        time_from="now/d",
    )
    board.stat(
        "Denials /s",
        "Records a subscriber did not receive (no grant, expired, revoked, not shared...)",
        "short",
        Query(f"sum(rate(sharebus_denials_total[{RATE}]))", "denials"),
    )
    board.stat(
        "Dead letters /s",
        "Records that could not be processed and went to the dead-letter topic",
        "short",
        Query(f"sum(rate(sharebus_dead_letters_total[{RATE}]))", "dead letters"),
    )
    board.row("Refusals and losses")
    board.graph(
        "Denials /s by reason",
        "The closed set of reasons; no_grant on a conditional class means a consumer awaits a grant",
        "short",
        Query(f"sum by (reason) (rate(sharebus_denials_total[{RATE}]))", "{{reason}}"),
    )
    board.graph(
        "Dead letters /s by reason",
        "sharebus dlq list --reason R shows them; sharebus dlq replay re-publishes after a fix",
        "short",
        Query(f"sum by (reason) (rate(sharebus_dead_letters_total[{RATE}]))", "{{reason}}"),
    )
    board.row("Latency and periodic releases")
    board.graph(
        "p99 publish → route latency by mode",
        "From the publisher's send to the router's forward; alert above 50 ms for 5 minutes",
        "s",
        Query(
            f"histogram_quantile(0.99, sum by (le, mode) (rate(sharebus_publish_to_route_seconds_bucket[{RATE}])))",
            "p99 {{mode}}",
        ),
        Query(
            f"histogram_quantile(0.5, sum by (le, mode) (rate(sharebus_publish_to_route_seconds_bucket[{RATE}])))",
            "p50 {{mode}}",
        ),
    )
    board.stat(
        "Periodic classes overdue",
        "Periodic classes whose provider missed its release",
        "short",
        Query("sum(sharebus_freshness_overdue)", "overdue"),
    )
    board.stat(
        "Grant applications past deadline",
        "Applications a provider has not answered within the deadline (10 working days)",
        "short",
        Query("sum(sharebus_grant_applications_overdue)", "overdue"),
    )
    board.graph(
        "Periodic batches released by outcome",
        "Batches released at a period's end: delivered, or empty (the provider sent nothing)",
        "short",
        Query(f"sum by (outcome) (increase(sharebus_batches_released_total[{RATE}]))", "{{outcome}}"),
    )
    board.graph(
        "Grants by state",
        "Grants as the router sees them now (expired ones counted as expired)",
        "short",
        Query("sum by (state) (sharebus_grants)", "{{state}}"),
    )
    return board


def _share(part: str, extra: str, whole: str) -> str:
    """The share of ``part`` in ``whole`` per data class of the department, over the dashboard's range."""
    matcher = ",".join(m for m in ('provider="$department"', extra) if m)
    return (
        f"sum by (data_class) (increase({part}{{{matcher}}}[{RANGE}]))"
        f' / sum by (data_class) (increase({whole}{{provider="$department"}}[{RANGE}]))'
    )


def department() -> Board:
    board = Board(
        "sharebus-department",
        "sharebus / department",
        "One department: what it provides, what its systems consume, its top data classes and their freshness",
    )
    board.variable("department", "Department", "sharebus_catalogue_system_info", "department")
    board.row("Provided by $department")
    board.graph(
        "Records provided /s by data class",
        "Good records $department published, as the router read them",
        "short",
        Query(
            f'sum by (data_class) (rate(sharebus_records_received_total{{provider="$department"}}[{RATE}]))',
            "{{data_class}}",
        ),
    )
    board.graph(
        "Records delivered from $department /s by consumer system",
        "Who receives $department's data",
        "short",
        Query(
            f'sum by (consumer) (rate(sharebus_records_total{{provider="$department"}}[{RATE}]))',
            "{{consumer}}",
        ),
    )
    board.bars(
        "Top data classes (records provided in range)",
        "$department's ten busiest data classes over the dashboard's time range",
        "short",
        Query(
            "topk(10, sum by (data_class) "
            f'(increase(sharebus_records_received_total{{provider="$department"}}[{RANGE}])))',
            "{{data_class}}",
            instant=True,
        ),
    )
    board.graph(
        "Denials of $department's data /s by reason",
        "Records of $department that a subscriber did not receive",
        "short",
        Query(
            f'sum by (reason) (rate(sharebus_denials_total{{provider="$department"}}[{RATE}]))',
            "{{reason}}",
        ),
    )
    board.row("Consumed by $department's systems")
    board.graph(
        "Records consumed /s by provider",
        "What $department's systems receive, by the department that provided it",
        "short",
        Query(f"sum by (provider) (rate(sharebus_records_total[{RATE}]) * {_OF_DEPT})", "{{provider}}"),
    )
    board.stat(
        "Calls by $department's systems today",
        "Calls since midnight, the bureau's assessment figure",
        "short",
        Query(f"sum(increase(sharebus_calls_total[{RANGE}]) * {_OF_DEPT})", "calls"),
        time_from="now/d",
    )
    board.stat(
        "Applications to $department past deadline",
        "Grant applications $department has not answered within the deadline",
        "short",
        Query('sum(sharebus_grant_applications_overdue{provider="$department"})', "overdue"),
    )
    board.row("Freshness of $department's classes")
    board.table(
        "Freshness by data class",
        "Seconds since each class's last record; 1 in overdue means a periodic release was missed",
        Query('max by (data_class, mode) (sharebus_freshness_age_seconds{provider="$department"})', instant=True),
        Query('max by (data_class, mode) (sharebus_freshness_overdue{provider="$department"})', instant=True),
    )
    board.row("Quality of $department's data (docs/quality.md)")
    board.stat(
        "Classes delivered",
        "Share of $department's catalogued classes published within the delivery window"
        " (a class never published counts 0)",
        "percentunit",
        Query('max(sharebus_quality_delivery_ratio{provider="$department"})', "delivered"),
    )
    board.table(
        "Quality scores by data class",
        "Validity (records passing the rules) and completeness (fields filled) over the range;"
        " timeliness and delivery now",
        Query(
            _share("sharebus_quality_records_total", 'result="passed"', "sharebus_quality_records_total"), instant=True
        ),
        Query(
            _share("sharebus_quality_fields_filled_total", "", "sharebus_quality_fields_declared_total"), instant=True
        ),
        Query('1 - max by (data_class) (sharebus_freshness_overdue{provider="$department"})', instant=True),
        Query('max by (data_class) (sharebus_quality_delivery{provider="$department"})', instant=True),
    )
    board.graph(
        "Rule failures /s by rule",
        "Records of $department failing each quality rule (<field>:<kind>)",
        "short",
        Query(
            f'sum by (data_class, rule) (rate(sharebus_quality_rule_failures_total{{provider="$department"}}[{RATE}]))',
            "{{data_class}} {{rule}}",
        ),
    )
    return board


def data_class() -> Board:
    board = Board(
        "sharebus-data-class",
        "sharebus / data class",
        "One data class: who receives it, under which share or grant, and how fresh it is",
    )
    board.variable("data_class", "Data class", "sharebus_catalogue_data_class_info", "data_class")
    board.row("$data_class")
    board.table(
        "Catalogue entry",
        "Provider, share type and update mode from the catalogue",
        Query('sharebus_catalogue_data_class_info{data_class="$data_class"}', instant=True),
        width=24,
    )
    board.graph(
        "Records delivered /s by consumer and share type",
        "Who receives it; conditional means under an approved grant",
        "short",
        Query(
            f'sum by (consumer, share_type) (rate(sharebus_records_total{{data_class="$data_class"}}[{RATE}]))',
            "{{consumer}} ({{share_type}})",
        ),
    )
    board.graph(
        "Denied /s by consumer and reason",
        "Subscribers that did not receive it, and why (no_grant, grant_expired, grant_revoked...)",
        "short",
        Query(
            f'sum by (consumer, reason) (rate(sharebus_denials_total{{data_class="$data_class"}}[{RATE}]))',
            "{{consumer}}: {{reason}}",
        ),
    )
    board.table(
        "Receivers in range",
        "Records each consumer system received over the dashboard's time range",
        Query(
            f'sum by (consumer, share_type) (increase(sharebus_records_total{{data_class="$data_class"}}[{RANGE}]))',
            instant=True,
        ),
    )
    board.graph(
        "Records received /s",
        "Good records the provider published",
        "short",
        Query(f'sum(rate(sharebus_records_received_total{{data_class="$data_class"}}[{RATE}]))', "received"),
    )
    board.row("Freshness and backfill")
    board.graph(
        "Age of the last record",
        "Seconds since the last record of this class",
        "s",
        Query('max by (mode) (sharebus_freshness_age_seconds{data_class="$data_class"})', "age ({{mode}})"),
    )
    board.stat(
        "Overdue",
        "1 when a periodic release was missed",
        "short",
        Query('max(sharebus_freshness_overdue{data_class="$data_class"})', "overdue"),
    )
    board.stat(
        "Last record",
        "When the last record of this class arrived",
        "dateTimeFromNow",
        Query('max(sharebus_freshness_last_record_timestamp_seconds{data_class="$data_class"}) * 1000', "last"),
    )
    board.graph(
        "Backfill records by consumer",
        "Records replayed to a consumer that joined late or was granted access",
        "short",
        Query(
            f'sum by (consumer) (increase(sharebus_backfill_records_total{{data_class="$data_class"}}[{RATE}]))',
            "{{consumer}}",
        ),
    )
    return board


def health() -> Board:
    board = Board("sharebus-health", "sharebus / health", "Is the bus keeping up: lag, rebalances, throughput, errors")
    board.row("Lag")
    board.graph(
        "Consumer lag by group",
        "Records behind the end of their topics: the router's group over source topics, each subscriber's "
        "over its delivery topic",
        "short",
        Query("sum by (group) (sharebus_consumer_lag_records)", "{{group}}"),
    )
    board.bars(
        "Largest lags (group, topic)",
        "The ten (group, topic) pairs furthest behind",
        "short",
        Query("topk(10, sharebus_consumer_lag_records)", "{{group}} {{topic}}", instant=True),
    )
    board.stat(
        "Groups with growing lag",
        "(group, topic) pairs whose lag only rose over the monitor's window",
        "short",
        Query("sum(sharebus_consumer_lag_growing)", "growing"),
    )
    board.stat(
        "Seconds since lag was sampled",
        "The monitor samples every few seconds; a large value means it cannot read Kafka",
        "s",
        Query("time() - max(sharebus_monitor_lag_last_success_timestamp_seconds)", "age"),
    )
    board.row("Processor")
    board.graph(
        "Router throughput (records /s)",
        "Source records the router's data path read, and control events its Faust agents processed",
        "short",
        Query(f"sum(rate(sharebus_router_consumed_records_total[{RATE}]))", "source records"),
        Query(f"sum(rate(faust_router_total_events_total[{RATE}]))", "control events"),
    )
    board.graph(
        "Rebalances",
        "Source partitions assigned, revoked and lost in the interval (data path), and Faust's rebalances",
        "short",
        Query(f"sum by (event) (increase(sharebus_router_rebalances_total[{RATE}]))", "{{event}}"),
        Query(f"sum(increase(faust_router_rebalance_done_latency_count[{RATE}]))", "Faust completed"),
    )
    board.graph(
        "Commit latency p99 (s)",
        "The data path's commits: from an epoch's cut until Kafka acknowledged it and its offsets went out; and "
        "commits not made",
        "s",
        Query(
            f"histogram_quantile(0.99, sum by (le) (rate(sharebus_router_commit_seconds_bucket[{RATE}])))",
            "p99",
        ),
        Query(f"sum by (reason) (increase(sharebus_router_commit_failures_total[{RATE}]))", "not made: {{reason}}"),
    )
    board.graph(
        "Audit events /s by decision",
        "Decisions the auditor chained and committed",
        "short",
        Query(f"sum by (decision) (rate(sharebus_audit_events_total[{RATE}]))", "{{decision}}"),
    )
    board.row("Errors")
    board.graph(
        "Errors /s",
        "Failed producer sends (the router exits on one), dead letters, unreadable audit facts, failed lag samples",
        "short",
        Query(f"sum(rate(faust_router_total_error_messages_sent_total[{RATE}]))", "send errors"),
        Query(f"sum(rate(sharebus_dead_letters_total[{RATE}]))", "dead letters"),
        Query(f"sum(rate(sharebus_audit_malformed_facts_total[{RATE}]))", "malformed audit facts"),
        Query(f"sum(rate(sharebus_monitor_lag_errors_total[{RATE}]))", "lag sample errors"),
    )
    board.stat(
        "Processes up",
        "Scrape targets answering, per job",
        "short",
        Query('sum by (job) (up{job=~"sharebus-.*"})', "{{job}}"),
    )
    return board


ALL = {"overview": overview, "department": department, "data-class": data_class, "health": health}
