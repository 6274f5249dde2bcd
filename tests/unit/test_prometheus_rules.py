"""The alert rules and the Prometheus config, checked by the real promtool (installed by set-up: never skipped)."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from sharebus_cli.prometheus import CONFIG, INSTALL_HINT, PROMETHEUS_DIR, rewrite_config

ALERTS = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, f"promtool is not installed; {INSTALL_HINT}"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules_passes() -> None:
    result = _promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 11 rules found" in result.stdout


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
    assert rewritten["scrape_configs"] == original["scrape_configs"]
    # With no interval given, the project's own stays.
    kept = yaml.safe_load(rewrite_config(CONFIG.read_text(), ports))
    assert kept["global"] == original["global"]
