from __future__ import annotations

from pydantic import Field

from sharebus_core.settings import BusSettings, shared_config


class GatewaySettings(BusSettings):
    """Env prefix ``SHAREBUS_GATEWAY_`` (plus the shared ``SHAREBUS_BOOTSTRAP`` etc.)."""

    model_config = shared_config("SHAREBUS_GATEWAY_")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "info"
    # A batch is validated whole before anything is produced, so its size bounds the request's memory.
    max_batch_records: int = Field(default=1000, ge=1)
    # Per feed connection: events read from Kafka but not yet written to the client. A client that lets
    # this fill up is disconnected, so a slow reader never grows the gateway's memory.
    feed_queue_size: int = Field(default=256, ge=1)
    # A client that takes no event for this long while its queue is full (or whose socket takes this
    # long to accept one) is disconnected. Connections beyond the maximum are refused with 503.
    feed_stall_timeout_s: float = Field(default=10.0, gt=0)
    feed_max_connections: int = Field(default=200, ge=1)
    # SSE comment lines keep idle connections (and proxies) from timing out.
    feed_keepalive_s: float = Field(default=15.0, gt=0)
    feed_poll_records: int = Field(default=100, ge=1)
    # Per feed connection: record ids remembered to drop the router's redeliveries (as the SDK does).
    feed_dedupe_window: int = Field(default=10_000, ge=0)
    publish_timeout_s: float = Field(default=30.0, gt=0)
    # Idempotency keys whose answer this gateway remembers (a retry of one publishes nothing).
    idempotency_window: int = Field(default=10_000, ge=0)
    # A request body over this is refused with 413 before it is read whole or parsed (a full batch of
    # max_batch_records ordinary records fits well within it).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Per API key: a token bucket of requests (rate_burst at once, rate_per_s on average), and a cap
    # on open feeds, SSE and WebSocket together. Over either: 429.
    rate_per_s: float = Field(default=50.0, gt=0)
    rate_burst: int = Field(default=100, ge=1)
    feed_max_per_key: int = Field(default=4, ge=1)
    # GET /v1/systems/{system}/batches[/{id}] read one page of the delivery topic per request: at most this
    # many records and bytes (the newest ones unless ?from= says where), and at most this many pages at once
    # in the gateway (one more is 503), so no request holds the topic in memory.
    batch_page_max_records: int = Field(default=10_000, ge=1)
    batch_page_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    batch_pages_at_once: int = Field(default=4, ge=1)
    # /readyz's "broker" is the last answer of one background probe, asked this often (never per request).
    broker_probe_interval_s: float = Field(default=5.0, gt=0)
    # The address the public and other buses reach this gateway at: IRIs of the DCAT-AP and ODRL exports
    # are minted under it (default http://<host>:<port>).
    public_url: str | None = None
    # The catalogue's publisher in the DCAT-AP export: the bureau that keeps it (the catalogue's first
    # department when this one is not in it).
    catalogue_publisher: str = "BDB"
    # Open data (/open/v1, docs/open-data.md). Anonymous callers are limited per client address, open-data
    # keys per key; both more strictly than department keys. A page holds at most open_page_max records
    # (more is 413) and a response at most open_max_response_bytes (a page is cut short to fit).
    open_rate_per_s: float = Field(default=5.0, gt=0)
    open_rate_burst: int = Field(default=10, ge=1)
    open_key_rate_per_s: float = Field(default=10.0, gt=0)
    open_key_rate_burst: int = Field(default=20, ge=1)
    open_page_max: int = Field(default=100, ge=1)
    open_max_response_bytes: int = Field(default=256 * 1024, ge=1024)
    # Per open class, the newest records the gateway keeps for the paged download.
    open_recent_records: int = Field(default=1000, ge=1)
    # Open SSE feeds per client (address or open-data key) and in all.
    open_feeds_per_client: int = Field(default=2, ge=1)
    open_feeds_max: int = Field(default=100, ge=1)
    # An open feed is closed after this long (the client reconnects), so no feed holds a slot forever.
    open_feed_max_lifetime_s: float = Field(default=3600.0, gt=0)
    # Open-data key applications per client address (IPv6 by /64), whatever token it sends: a burst, then
    # open_key_issue_per_hour; and the most active open-data keys the bus holds (each is a control record
    # every gateway keeps).
    open_key_issue_burst: int = Field(default=3, ge=1)
    open_key_issue_per_hour: float = Field(default=3.0, gt=0)
    open_keys_max: int = Field(default=10_000, ge=1)
