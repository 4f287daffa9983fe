"""Fixtures of the chart tests: a chart copy with fixture files, and renders shared per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm.helm_render import (
    CI_VALUES,
    Rendered,
    chart_with_fixtures,
    load_values,
    render_chart,
)


@pytest.fixture(scope="session")
def fixture_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart whose files/ holds the test fixtures."""
    return chart_with_fixtures(tmp_path_factory.mktemp("chart"))


VALUE_SETS = [pytest.param(None, id="default"), *(pytest.param(p, id=p.stem) for p in CI_VALUES)]


@pytest.fixture(scope="session")
def render_cache(fixture_chart: Path) -> dict[str, Rendered]:
    """Renders shared by the tests of a session (rendering is the slow part)."""
    return {}


@pytest.fixture(params=VALUE_SETS)
def rendered(
    request: pytest.FixtureRequest, fixture_chart: Path, render_cache: dict[str, Rendered]
) -> Rendered:
    """The fixture chart rendered with the default values and each ``ci/*-values.yaml``."""
    path: Path | None = request.param
    key = path.name if path else "default"
    if key not in render_cache:
        render_cache[key] = render_chart(fixture_chart, load_values(path) if path else None)
    return render_cache[key]
