"""Every value is documented, the README is current, every toggle has a ci/ values file, and
the values examples in docs/kubernetes.md render to valid manifests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import helm_docs
from tests.helm.helm_render import (
    CHART,
    CI_VALUES,
    ROOT,
    load_values,
    render_chart,
    validate_kubernetes,
)

GUIDE = ROOT / "docs" / "kubernetes.md"
VALUES_BLOCK = re.compile(r"```yaml\n(# values: [^\n]*\n.*?)```", re.DOTALL)


def test_every_value_has_a_helm_docs_comment() -> None:
    _, missing = helm_docs.parse((CHART / "values.yaml").read_text())
    assert missing == []


def test_an_undocumented_value_is_noticed() -> None:
    text = "# -- documented\na: 1\nb:\n  # -- documented too\n  c: 2\n  d: 3\n"
    rows, missing = helm_docs.parse(text)
    assert [r.key for r in rows] == ["a", "b.c"]
    assert missing == ["b.d"]


def test_the_chart_readme_is_generated_from_the_values() -> None:
    expected = helm_docs.render()
    actual = (CHART / "README.md").read_text()
    assert actual == expected, "stale: run .venv/bin/python tests/helm/helm_docs.py"


def _toggles() -> dict[str, bool]:
    """Documented boolean values (not booleans inside maps documented as a whole)."""
    text = (CHART / "values.yaml").read_text()
    rows, _ = helm_docs.parse(text)
    return {r.key: r.default == "`true`" for r in rows if r.type == "bool"}


def _set_in(values: dict[str, Any], path: str) -> list[Any]:
    """Values ``path`` takes in a values file; ``modelDefaults.x`` also counts as ``models.*.x``."""
    found = []
    candidates: list[dict[str, Any]] = [values]
    parts = path.split(".")
    if parts[0] == "modelDefaults":
        candidates += list((values.get("models") or {}).values())
        heads: list[list[str]] = [parts] + [parts[1:]] * (len(candidates) - 1)
    else:
        heads = [parts]
    for start, keys in zip(candidates, heads, strict=True):
        node: Any = start
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            found.append(node)
    return found


def test_every_toggle_is_flipped_by_a_ci_values_file() -> None:
    toggles = _toggles()
    assert "postgresql.enabled" in toggles
    ci = [load_values(p) for p in CI_VALUES]
    unflipped = [
        path
        for path, default in toggles.items()
        if not any((not default) in _set_in(v, path) for v in ci)
    ]
    assert unflipped == []


def _guide_examples() -> list[Any]:
    if not GUIDE.exists():
        return [pytest.param("", id="missing-guide")]
    blocks = VALUES_BLOCK.findall(GUIDE.read_text())
    return [pytest.param(b, id=b.splitlines()[0].removeprefix("# values: ")) for b in blocks]


@pytest.mark.parametrize("block", _guide_examples())
def test_the_guide_examples_render_to_valid_manifests(block: str, fixture_chart: Path) -> None:
    assert block, f"{GUIDE} is missing or has no values example"
    rendered = render_chart(fixture_chart, yaml.safe_load(block))
    assert rendered.manifests
    for manifest in rendered.manifests:
        if manifest["apiVersion"].startswith("monitoring.coreos.com"):
            continue  # checked by test_helm_manifests with the operator schemas
        validate_kubernetes(manifest)
