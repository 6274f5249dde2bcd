"""The alert rules and the Prometheus config, checked by the real promtool (installed by set-up: never skipped)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sharebus_cli.compose_prometheus import main as compose_prometheus
from sharebus_cli.prometheus import COMPOSE_HOSTS, CONFIG, INSTALL_HINT, PROMETHEUS_DIR, compose_config, rewrite_config

ALERTS = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, f"promtool is not installed; {INSTALL_HINT}"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules_passes() -> None:
    result = _promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


def test_promtool_check_config_passes_on_the_project_config() -> None:
    result = _promtool("check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = _promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_shown_firing_and_quiet() -> None:
    alerts = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    assert fired == alerts, f"never shown firing: {alerts - fired}"
    assert quiet == alerts, f"never shown quiet: {alerts - quiet}"


def test_rewriting_changes_only_the_ports_and_intervals() -> None:
    original = yaml.safe_load(CONFIG.read_text())
    ports = {"sharebus-router": 16066, "sharebus-auditor": 16067, "sharebus-monitor": 16068}
    rewritten = yaml.safe_load(rewrite_config(CONFIG.read_text(), ports, scrape_interval="1s"))
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in rewritten["scrape_configs"]}
    assert targets == {job: [f"127.0.0.1:{port}"] for job, port in ports.items()}
    assert rewritten["global"]["scrape_interval"] == "1s"
    assert rewritten["rule_files"] == original["rule_files"]
    for job in rewritten["scrape_configs"]:
        job["static_configs"] = [{"targets": ["x"]}]
    for job in original["scrape_configs"]:
        job["static_configs"] = [{"targets": ["x"]}]
    assert rewritten["scrape_configs"] == [job for job in original["scrape_configs"] if job["job_name"] in ports]
    # With no interval given, the project's own stays.
    kept = yaml.safe_load(rewrite_config(CONFIG.read_text(), ports))
    assert kept["global"] == original["global"]


def test_a_process_that_does_not_run_is_not_scraped() -> None:
    """Every bus process has its job, but only those the caller names are kept: a target nothing answers
    would fire SharebusProcessDown."""
    jobs = [job["job_name"] for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"]]
    assert {"sharebus-gateway", "sharebus-access", "sharebus-land"} <= set(jobs)
    ports = {"sharebus-router": 6066, "sharebus-gateway": 8080, "sharebus-access": 6069}
    kept = yaml.safe_load(rewrite_config(CONFIG.read_text(), ports))["scrape_configs"]
    assert {job["job_name"]: job["static_configs"][0]["targets"] for job in kept} == {
        "sharebus-router": ["127.0.0.1:6066"],
        "sharebus-gateway": ["127.0.0.1:8080"],
        "sharebus-access": ["127.0.0.1:6069"],
    }


def test_compose_scrapes_a_city_sized_bus_by_service_name_in_parts(tmp_path: Path) -> None:
    # Rules from the project's directory here, so that promtool can load them.
    # promtool checks that the token file exists; compose's is in Prometheus's secrets volume.
    token = tmp_path / "scrape-token"
    token.write_text("x" * 43)
    config = yaml.safe_load(compose_config(3170, str(PROMETHEUS_DIR), str(token)))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job in jobs.values():
        assert job["authorization"] == {"type": "Bearer", "credentials_file": str(token)}
    for name in ("sharebus-router", "sharebus-monitor"):
        assert jobs[name]["params"] == {"shards": ["8"]}
        assert [static["labels"]["shard"] for static in jobs[name]["static_configs"]] == [str(k) for k in range(8)]
        assert {tuple(static["targets"]) for static in jobs[name]["static_configs"]} == {tuple(COMPOSE_HOSTS[name])}
    assert jobs["sharebus-auditor"]["static_configs"] == [{"targets": ["auditor:6067"]}]
    assert jobs["sharebus-gateway"]["static_configs"] == [{"targets": ["gateway:8080"]}]
    assert jobs["sharebus-access"]["static_configs"] == [{"targets": ["access:6069"]}]
    assert "sharebus-land" not in jobs  # compose runs no landing sink
    assert config["rule_files"] == [f"{PROMETHEUS_DIR}/alerts.yml"]
    rendered = tmp_path / "prometheus.yml"
    rendered.write_text(yaml.safe_dump(config))
    result = _promtool("check", "config", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_scrapes_the_demo_catalogue_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(PROMETHEUS_DIR.parents[1] / "schemas"))
    out = tmp_path / "rendered" / "prometheus.yml"
    assert compose_prometheus(["--out", str(out), "--rules-dir", "/etc/sharebus"]) == 0
    config = yaml.safe_load(out.read_text())
    assert out.stat().st_mode & 0o777 == 0o644
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["sharebus-router"]["static_configs"] == [{"targets": ["router-1:6066", "router-2:6066"]}]
    assert "params" not in jobs["sharebus-router"]
    assert config["rule_files"] == ["/etc/sharebus/alerts.yml"]
    # Every target demands the scrape token, which bus-init writes into Prometheus's own volume.
    assert {job["authorization"]["credentials_file"] for job in jobs.values()} == {"/etc/sharebus-secrets/scrape-token"}
    assert {job["authorization"]["type"] for job in jobs.values()} == {"Bearer"}


def test_compose_prometheus_refuses_a_broken_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(tmp_path / "nothing"))
    out = tmp_path / "prometheus.yml"
    assert compose_prometheus(["--out", str(out)]) == 2
    assert not out.exists()


def test_every_job_sends_the_scrape_token_when_given(tmp_path: Path) -> None:
    """``sharebus run`` and the tests give the run's token file: every job sends it (every /metrics demands it),
    and promtool takes the config."""
    token = tmp_path / "scrape-token"
    token.write_text("x" * 43)
    ports: dict[str, int | list[int]] = {
        "sharebus-router": [6066, 6071],
        "sharebus-auditor": 6067,
        "sharebus-gateway": 8080,
    }
    config = yaml.safe_load(rewrite_config(CONFIG.read_text(), ports, shards={"sharebus-router": 2}, token_file=token))
    assert [job["authorization"] for job in config["scrape_configs"]] == [
        {"type": "Bearer", "credentials_file": str(token)}
    ] * 3
    rendered = tmp_path / "prometheus.yml"
    rendered.write_text(yaml.safe_dump(config))
    (tmp_path / "alerts.yml").write_text((PROMETHEUS_DIR / "alerts.yml").read_text())
    result = _promtool("check", "config", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr
