"""The table of dashboards and the files ``driftloop dashboards build`` writes.

The dashboards are generated from code into ``dashboards/grafana/``; the alert rules are written by
hand in ``dashboards/rules/``. Both are copied byte for byte into the Helm chart's ``files/`` so the
chart ships exactly what was tested here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.dashboards import feedback, model, overview, serving
from driftloop.dashboards.render import to_json

PACKAGE_DIR = Path(__file__).resolve().parent
GRAFANA_DIR = PACKAGE_DIR / "grafana"
RULES_DIR = PACKAGE_DIR / "rules"
RULE_TESTS_DIR = RULES_DIR / "tests"
PROVISIONING_DIR = PACKAGE_DIR / "provisioning"
CHART_FILES_DIR = PACKAGE_DIR.parent / "helm" / "driftloop" / "files"
"""The chart's ``files/`` in a source checkout; absent in an installed wheel."""

DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    f"{overview.UID}.json": overview.build,
    f"{model.UID}.json": model.build,
    f"{serving.UID}.json": serving.build,
    f"{feedback.UID}.json": feedback.build,
}
"""File name of each dashboard and the function that generates it."""


@dataclass(frozen=True)
class Change:
    """A file ``build`` writes or removes; ``content`` is None for a removal."""

    path: Path
    content: bytes | None


def generate() -> dict[str, str]:
    """Every dashboard's JSON text, by file name."""
    return {name: to_json(make()) for name, make in DASHBOARDS.items()}


def rule_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    """The Prometheus rule files, sorted by name."""
    return sorted(rules_dir.glob("*.yaml"))


def plan(
    grafana_dir: Path = GRAFANA_DIR,
    chart_files: Path | None = CHART_FILES_DIR,
    rules_dir: Path = RULES_DIR,
) -> list[Change]:
    """The writes and removals that bring every output up to date (empty when it is)."""
    dashboards = {name: text.encode() for name, text in generate().items()}
    rules = {path.name: path.read_bytes() for path in rule_files(rules_dir)}
    targets = [(grafana_dir, dashboards, "*.json")]
    if chart_files is not None:
        targets += [
            (chart_files / "dashboards", dashboards, "*.json"),
            (chart_files / "rules", rules, "*.yaml"),
        ]
    changes: list[Change] = []
    for folder, wanted, pattern in targets:
        for name, content in sorted(wanted.items()):
            path = folder / name
            if not path.is_file() or path.read_bytes() != content:
                changes.append(Change(path, content))
        if folder.is_dir():
            changes += [
                Change(path, None)
                for path in sorted(folder.glob(pattern))
                if path.name not in wanted
            ]
    return changes


def apply(changes: list[Change]) -> None:
    """Write (or remove) the planned files."""
    for change in changes:
        if change.content is None:
            change.path.unlink()
        else:
            change.path.parent.mkdir(parents=True, exist_ok=True)
            change.path.write_bytes(change.content)


def chart_files_dir() -> Path | None:
    """The chart's ``files/`` folder when running from a source checkout, else None."""
    chart = CHART_FILES_DIR.parent
    return CHART_FILES_DIR if (chart / "Chart.yaml").is_file() else None
