"""PromQL label matchers shared by the dashboards, written against their template variables."""

from __future__ import annotations

RATE = "$__rate_interval"
"""Range of every ``rate()``: at least four scrape intervals, as Grafana computes it."""
ONE_MODEL = 'model="$model"'
"""The model of a single-value ``model`` variable."""
VARIANTS = f'{ONE_MODEL}, variant=~"$variant", version=~"$version"'
"""One model, the picked variants and versions."""
WINDOW = f'{VARIANTS}, window="$window"'
"""One model, the picked variants, one live-performance window."""
WINDOW_METRIC = f'{WINDOW}, metric="$metric", class=""'
"""As ``WINDOW``, one whole-model metric (``class=""``)."""
