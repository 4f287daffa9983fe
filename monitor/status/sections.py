"""Purpose-made HTML for the sections people look at most; anything else renders generically."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

from driftloop.monitor.status.render import fmt, folded, summary, table


def _interval(metric: dict[str, Any] | None) -> str:
    if not metric or metric.get("value") is None:
        return "–"
    low, high = metric.get("lower"), metric.get("upper")
    bounds = f" [{fmt(low)}, {fmt(high)}]" if low is not None and high is not None else ""
    if not bounds and metric.get("reason"):
        bounds = f" (no interval: {metric['reason']})"  # withheld by a rule, e.g. too few rows
    return f"{fmt(metric['value'])}{bounds}"


def _heading(entry: dict[str, Any]) -> Markup:
    window = entry.get("window") or {}
    span = f"{window.get('start', '')[11:16]}–{window.get('end', '')[11:16]} UTC" if window else ""
    text = (
        f"{entry.get('version')} · {entry.get('variant')} · {span} · {entry.get('records')} records"
    )
    return Markup(f'<p class="muted">{escape(text)}</p>')


def drift(section: Any) -> Markup:
    """Per version and variant: the verdict and each feature's test against the reference."""
    if not section:
        return Markup('<p class="muted">not evaluated yet</p>')
    parts = []
    for entry in section:
        ref = entry.get("reference") or {}
        verdict = "bad" if ref.get("dataset_drift") else "ok"
        label = "dataset drift" if ref.get("dataset_drift") else "no dataset drift"
        parts.append(
            _heading(entry)
            + Markup(
                f'<p><span class="{verdict}">{label}</span> · drifted share '
                f"{escape(fmt(ref.get('drifted_share')))}</p>"
            )
        )
        rows = list(ref.get("features") or [])
        prediction = (entry.get("prediction") or {}).get("reference")
        if prediction and prediction.get("rows"):
            rows.append(prediction)
        columns = ["name", "kind", "method", "statistic", "p_adjusted", "effect_size", "drifted"]
        parts.append(table(rows, columns))
    return Markup("").join(parts)


def quality(section: Any) -> Markup:
    """Missing, type-error, out-of-range and out-of-distribution shares per feature."""
    if not section:
        return Markup('<p class="muted">not evaluated yet</p>')
    parts = []
    for entry in section:
        rows = [
            {"feature": name, **values} for name, values in (entry.get("features") or {}).items()
        ]
        ood = fmt(entry.get("ood_records_ratio"))
        parts.append(_heading(entry) + Markup(f"<p>out-of-distribution records: {ood}</p>"))
        parts.append(table(rows))
    return Markup("").join(parts)


def performance(section: Any) -> Markup:
    """The primary metric (and its companions) with intervals, per version and variant."""
    windows = section.get("windows") if isinstance(section, dict) else None
    if not windows:
        return Markup('<p class="muted">no labeled rows yet</p>')
    parts = []
    previous: tuple[Any, ...] | None = None
    same: list[str] = []
    for name, window in windows.items():
        rows = []
        for version, variants in (window.get("versions") or {}).items():
            for variant, result in variants.items():
                metrics = result.get("metrics") or {}
                row: dict[str, Any] = {
                    "version": version,
                    "variant": variant,
                    "labeled": result.get("n"),
                    "coverage": _interval(result.get("label_coverage")),
                }
                for metric, value in list(metrics.items())[:5]:
                    row[metric] = _interval(value)
                rows.append(row)
        signature = tuple((r["version"], r["variant"], r["labeled"]) for r in rows)
        if rows and signature == previous:
            same.append(name)  # the longer window holds the same rows: same numbers
            continue
        previous = signature
        if rows:
            parts.append(Markup(f'<p class="muted">last {escape(name)}</p>') + table(rows))
    if same:
        parts.append(
            Markup(f'<p class="muted">last {escape(", ".join(same))}: the same labeled rows</p>')
        )
    return Markup("").join(parts) or Markup('<p class="muted">no labeled rows yet</p>')


WHOLE_MODEL = ("accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse")
"""Estimated metrics shown per group (per-class ones, ``f1:<class>``, stay in the JSON)."""


def _estimate(metric: dict[str, Any] | None) -> str:
    if not metric:
        return "–"
    return _interval({**metric, "value": metric.get("estimate")})


def _duration(seconds: Any) -> str:
    """``3600`` -> ``1h``, ``90`` -> ``90s``."""
    if not isinstance(seconds, int | float) or seconds <= 0:
        return "window"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{fmt(float(seconds))}s"


def estimated(section: Any) -> Markup:
    """Estimated against realized performance per version, variant and metric: the estimate over
    the window with its interval, the value realized on the reference, and once labels arrived
    the estimate on the labeled rows beside their realized value and the estimation error."""
    if not isinstance(section, dict):
        return Markup('<p class="muted">not estimated</p>')
    window = f"last {_duration(section.get('window_seconds'))}"
    if section.get("reason"):
        return Markup(f'<p><span class="bad">not estimable</span>: {escape(section["reason"])}</p>')
    groups = section.get("groups") or []
    if not groups:
        return Markup(f'<p class="muted">no records in the {escape(window)}</p>')
    parts = []
    for group in groups:
        skipped = group.get("skipped_rows")
        text = f"{group.get('version')} · {group.get('variant')} · {window}"
        text += f" · {group.get('rows')} rows"
        if skipped:
            text += f" ({skipped} without complete scores)"
        parts.append(Markup(f'<p class="muted">{escape(text)}</p>'))
        if group.get("reason"):
            parts.append(
                Markup(f'<p><span class="bad">not estimable</span>: {escape(group["reason"])}</p>')
            )
            continue
        metrics = group.get("metrics") or {}
        reference = group.get("reference") or {}
        reconciled = group.get("reconciliation") or {}
        labeled = reconciled.get("metrics") or {}
        realized = reconciled.get("realized") or {}
        errors = reconciled.get("error") or {}
        rows = []
        for name in [m for m in WHOLE_MODEL if m in metrics]:
            truth = realized.get(name)
            interval = labeled.get(name) or {}
            covered = (
                None
                if truth is None or interval.get("lower") is None
                else interval["lower"] <= truth <= interval["upper"]
            )
            rows.append(
                {
                    "metric": name,
                    "estimated": _estimate(metrics.get(name)),
                    "on the reference": fmt(reference.get(name)),
                    "estimated on labeled rows": _estimate(interval),
                    "realized": fmt(truth),
                    "estimation error": fmt(errors.get(name)),
                    "within the interval": "–"
                    if covered is None
                    else Markup(
                        f'<span class="{"ok" if covered else "bad"}">'
                        f"{'yes' if covered else 'no'}</span>"
                    ),
                }
            )
        note = (
            f"{reconciled.get('rows')} of the rows have labels"
            if reconciled
            else "no labels yet: realized values and errors appear when they arrive"
        )
        parts.append(table(rows) + Markup(f'<p class="muted">{escape(note)}</p>'))
    return Markup("").join(parts)


def rollout(section: Any, decisions: list[dict[str, Any]]) -> Markup:
    """The rollout's state and its decision history with the interval behind each decision."""
    if not section:
        return Markup('<p class="muted">no rollout</p>')
    state = (
        f"{section.get('champion')} → {section.get('challenger')}: {section.get('status')}, "
        f"step {section.get('step')} ({section.get('mode')}, weight {fmt(section.get('weight'))})"
    )
    deadline = section.get("deadline") or {}
    if deadline.get("seconds_left") is not None and section.get("status") in ("active", "paused"):
        state += f"; deadline: {deadline.get('action')} in {fmt(deadline['seconds_left'])} s"
    guess = section.get("estimated_difference") or {}
    if guess.get("estimate") is not None:
        value = {**guess, "value": guess["estimate"]}
        state += (
            f"; estimated difference (challenger − champion, no labels, never promotes): "
            f"{_interval(value)}"
        )
    rows = []
    for d in decisions[-20:]:
        evidence = d.get("evidence") or {}
        diff = evidence.get("difference") or {}
        samples = evidence.get("samples") or {}
        rows.append(
            {
                "at": (d.get("decided_at") or "")[11:19],
                "decision": d.get("decision"),
                "by": d.get("actor"),
                "step": f"{d.get('from_step')}→{d.get('to_step')}",
                "difference": _interval(
                    {
                        "value": diff.get("estimate"),
                        "lower": diff.get("lower"),
                        "upper": diff.get("upper"),
                    }
                ),
                "n (champion/challenger)": f"{samples.get('champion')}/{samples.get('challenger')}",
                "reason": d.get("reason"),
                "evidence": folded(evidence, "JSON") if evidence else "–",
            }
        )
    return Markup(f"<p>{escape(state)}</p>") + table(rows)


def retraining(section: Any, triggers: list[dict[str, Any]]) -> Markup:
    """The retraining policy and the triggers it fired, with their webhook deliveries."""
    rows = [
        {
            "fired": (t.get("fired_at") or "")[:19].replace("T", " "),
            "reason": t.get("reason"),
            "evidence": folded(t.get("evidence")),
            "snapshot rows": (t.get("dataset") or {}).get("rows"),
            "webhook-id": t.get("webhook_id"),
            "delivery": t.get("delivery"),
        }
        for t in triggers
    ]
    if not section:
        return Markup('<p class="muted">no policy</p>') + table(rows)
    policy = folded(section, f"policy: {summary(section)} (JSON)")
    return policy + table(rows)


Renderer = Callable[[Any], Markup]
SIMPLE: dict[str, Renderer] = {"drift": drift, "quality": quality, "performance": performance}
