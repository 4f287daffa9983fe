"""Alert rules: promtool accepts them, their unit tests pass, each alert has a runbook section."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.dashboards import RULE_TESTS_DIR, rule_files
from tests.procs import need_binary

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/driftloop/driftloop/blob/main/docs/runbooks.md#"
REQUIRED = {
    "drift": "DriftloopDatasetDrift",
    "performance degradation": "DriftloopPerformanceDegraded",
    "capture loss": "DriftloopCaptureLoss",
    "spool filling": "DriftloopSpoolFilling",
    "webhook failing": "DriftloopWebhookFailing",
    "rollout rolled back": "DriftloopRolloutRolledBack",
    "monitor down": "DriftloopMonitorDown",
    "sample ratio mismatch": "DriftloopSampleRatioMismatch",
}


def _alerts() -> list[dict[str, Any]]:
    return [
        rule
        for path in rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


ALERTS = _alerts()


def _anchors() -> set[str]:
    headings = re.findall(r"^#+ (.+)$", RUNBOOKS.read_text(), re.M)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def test_promtool_accepts_every_rule_file() -> None:
    promtool = need_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, rule_files())], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_promtool_unit_tests_pass() -> None:
    promtool = need_binary("promtool")
    tests = sorted(RULE_TESTS_DIR.glob("*_test.yaml"))
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, tests)],
        capture_output=True,
        text=True,
        cwd=RULE_TESTS_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_has_a_unit_test_file_that_loads_it() -> None:
    for path in rule_files():
        test = RULE_TESTS_DIR / f"{path.stem}_test.yaml"
        assert test.is_file(), f"{path.name} has no {test.name}"
        assert f"../{path.name}" in yaml.safe_load(test.read_text())["rule_files"]


def test_every_alert_is_unit_tested_firing() -> None:
    fired: set[str] = set()
    for test in RULE_TESTS_DIR.glob("*_test.yaml"):
        for case in yaml.safe_load(test.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    assert {a["alert"] for a in ALERTS} - fired == set()


@pytest.mark.parametrize("topic", sorted(REQUIRED))
def test_the_issue_s_alerts_exist(topic: str) -> None:
    assert REQUIRED[topic] in {a["alert"] for a in ALERTS}


@pytest.mark.parametrize("alert", ALERTS, ids=[a["alert"] for a in ALERTS])
def test_each_alert_is_documented(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    assert name.startswith("Driftloop")
    assert alert["labels"]["severity"] in {"critical", "warning", "info"}
    notes = alert["annotations"]
    assert notes["summary"].strip()
    assert notes["description"].strip()
    assert notes["runbook_url"] == RUNBOOK_BASE + name.lower()
    assert name.lower() in _anchors(), f"docs/runbooks.md has no section {name}"


def test_alert_names_are_unique() -> None:
    names = [a["alert"] for a in ALERTS]
    assert len(names) == len(set(names))


def test_every_runbook_section_belongs_to_an_alert() -> None:
    sections = re.findall(r"^## (\S+)$", RUNBOOKS.read_text(), re.M)
    assert set(sections) == {a["alert"] for a in ALERTS}
