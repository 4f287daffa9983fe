"""The public surface of ``driftloop.dashboards``, its packaged files, and Grafana provisioning."""

from __future__ import annotations

from pathlib import Path

import yaml

from driftloop.dashboards import DASHBOARDS, GRAFANA_DIR, PROVISIONING_DIR, RULES_DIR
from driftloop.dashboards.publish import folder_uid

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_files_are_package_data() -> None:
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert data["package-dir"]["driftloop.dashboards"] == "dashboards"
    patterns = data["package-data"]["driftloop.dashboards"]
    for folder, pattern in [
        (GRAFANA_DIR, "grafana/*.json"),
        (RULES_DIR, "rules/*.yaml"),
        (RULES_DIR / "tests", "rules/tests/*.yaml"),
        (PROVISIONING_DIR / "dashboards", "provisioning/*/*.yaml"),
    ]:
        assert pattern in patterns
        assert list(folder.glob(pattern.rsplit("/", 1)[1])), f"nothing matches {pattern}"


def test_the_datasource_provisioning_is_a_prometheus_data_source() -> None:
    files = sorted((PROVISIONING_DIR / "datasources").glob("*.yaml"))
    assert files
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert doc["apiVersion"] == 1
        (source,) = doc["datasources"]
        assert source["type"] == "prometheus"
        assert source["access"] == "proxy"
        assert source["url"].startswith("http")
        assert source["jsonData"]["timeInterval"].endswith("s")


def test_the_dashboard_provider_puts_them_where_publish_does() -> None:
    files = sorted((PROVISIONING_DIR / "dashboards").glob("*.yaml"))
    assert files
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert doc["apiVersion"] == 1
        (provider,) = doc["providers"]
        assert provider["type"] == "file"
        assert provider["folder"] == "Driftloop"
        assert provider["folderUid"] == folder_uid(provider["folder"])
        assert provider["options"]["path"].startswith("/")
        assert provider["options"]["foldersFromFilesStructure"] is False


def test_every_dashboard_has_a_row_in_the_docs() -> None:
    text = (ROOT / "docs" / "grafana.md").read_text()
    for name in DASHBOARDS:
        assert f"`{name.removesuffix('.json')}`" in text
