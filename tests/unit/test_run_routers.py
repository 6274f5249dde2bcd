"""`sharebus run` with several router workers: Prometheus scrapes each (the rest is e2e's)."""

from __future__ import annotations

import yaml

from sharebus_cli.prometheus import CONFIG, rewrite_config
from sharebus_cli.run_settings import RunSettings


def test_every_router_worker_is_a_target_of_the_router_job() -> None:
    config = yaml.safe_load(rewrite_config(CONFIG.read_text(), {"sharebus-router": [6066, 6071, 6072]}))
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "sharebus-router"]
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:6066", "127.0.0.1:6071", "127.0.0.1:6072"]


def test_one_router_by_default_and_more_on_request() -> None:
    assert RunSettings().routers == 1
    assert RunSettings(routers=2).router_more_port == 6071
