"""``driftloop drift REFERENCE CURRENT``: drift between two data files (Parquet, CSV, JSON...).

Exit codes (``driftloop.cli.exits``): 0 compared, 1 dataset drift with ``--fail-on-drift``, 2 bad
input (a file that cannot be read, files that share no feature, an unknown column).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.cli.progress import Progress
    from driftloop.monitor.drift import DriftReport

LABEL_LIKE = ("target", "label", "labels", "y", "class", "prediction", "predicted", "score")
"""Column names that usually hold a label or a prediction rather than a feature: the command
says so when such a column is tested as a feature."""


def _names(value: str | None) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()] if value else []


def drift(
    reference: Path = typer.Argument(
        ...,
        help="Reference data: Parquet, CSV, TSV, JSON or JSON lines (found from the content).",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
    current: Path = typer.Argument(
        ..., help="Current data, any format REFERENCE accepts.", exists=True, dir_okay=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    html: Path | None = typer.Option(None, "--html", help="Also write an Evidently HTML report."),
    columns: str | None = typer.Option(
        None, help="Comma-separated columns to compare (default: every shared reference column)."
    ),
    categorical: str | None = typer.Option(
        None, help="Comma-separated columns to treat as categorical even if they hold numbers."
    ),
    label_column: str | None = typer.Option(
        None, help="Column(s) holding the true label: left out of the features (comma-separated)."
    ),
    prediction_column: str | None = typer.Option(
        None, help="Column(s) holding the model's output: left out of the features."
    ),
    alpha: float | None = typer.Option(
        None, help="Significance level (env DRIFTLOOP_DRIFT__ALPHA)."
    ),
    materiality: float | None = typer.Option(
        None, help="Smallest effect size that counts as drift (env DRIFTLOOP_DRIFT__MATERIALITY)."
    ),
    drifted_share: float | None = typer.Option(
        None, help="Share of drifted features that makes dataset drift."
    ),
    workers: int = typer.Option(1, min=1, help="Compare features in this many threads."),
    wide: bool = typer.Option(
        False,
        "--wide",
        help="Print the table at its full width instead of wrapping to the terminal.",
    ),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit with status 1 when the dataset drifted."
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show progress on stderr (plain lines when piped)."
    ),
) -> None:
    """Compare CURRENT with REFERENCE feature by feature (KS and chi-square, BH-adjusted).

    Exits 0 when compared, 1 on dataset drift with --fail-on-drift, 2 on bad input (for example
    files that share no feature column).
    """
    from driftloop.cli.exits import BAD_INPUT, FINDING, fail
    from driftloop.cli.progress import Progress
    from driftloop.errors import DriftloopError

    error: Exception | None = None
    with Progress(enabled=progress) as bar:
        try:
            report, excluded = _compare(
                bar,
                reference,
                current,
                html=html,
                columns=_names(columns),
                categorical=set(_names(categorical)),
                excluded=[*_names(label_column), *_names(prediction_column)],
                thresholds=(alpha, materiality, drifted_share),
                workers=workers,
            )
        except (DriftloopError, ValueError, OSError) as exc:
            error = exc  # reported once the progress display is closed
    if error is not None:
        fail(str(error), BAD_INPUT)
    _hint(report, excluded)
    if as_json:
        typer.echo(json.dumps(report.as_json()))
    else:
        _print_table(report, reference, current, wide=wide)
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(FINDING)


def _compare(
    bar: Progress,
    reference: Path,
    current: Path,
    *,
    html: Path | None,
    columns: list[str],
    categorical: set[str],
    excluded: list[str],
    thresholds: tuple[float | None, float | None, float | None],
    workers: int,
) -> tuple[DriftReport, list[str]]:
    from driftloop.cli.files import read_table
    from driftloop.contract import FeatureKind
    from driftloop.errors import DatasetError
    from driftloop.monitor.drift import (
        DriftConfig,
        FeatureSpec,
        Reference,
        compare_frame,
        infer_specs,
    )
    from driftloop.settings import load_settings

    defaults = load_settings().drift
    alpha, materiality, drifted_share = thresholds
    config = DriftConfig(
        alpha=alpha if alpha is not None else defaults.alpha,
        materiality=materiality if materiality is not None else defaults.materiality,
        drifted_share=drifted_share if drifted_share is not None else defaults.drifted_share,
    )
    with bar.step(f"reading {reference.name}"):
        ref_frame = read_table(reference, "reference")
    with bar.step(f"reading {current.name}"):
        cur_frame = read_table(current, "current")
    features = _features(ref_frame, cur_frame, reference, current, columns, categorical, excluded)
    specs = [
        FeatureSpec(s.name, FeatureKind.categorical) if s.name in categorical else s
        for s in infer_specs(ref_frame, features)
    ]
    prepared: dict[str, Any] = {}
    stage = "preparing the reference"
    for i, spec in enumerate(specs):
        bar.update(stage, i, len(specs), unit="features")
        prepared.update(Reference.from_frame(ref_frame, [spec]).features)
    bar.update(stage, len(specs), len(specs), unit="features")
    with bar.step(f"comparing {len(specs)} features on {len(cur_frame):,} rows"):
        report = compare_frame(Reference(specs, prepared), cur_frame, config, workers=workers)
    if html is not None:
        from driftloop.monitor.evaluation.report import evidently_html

        with bar.step(f"writing the Evidently report {html.name}"):
            if not html.parent.is_dir():
                raise DatasetError(f"cannot write {str(html)!r}: no folder {str(html.parent)!r}")
            html.write_text(
                evidently_html(ref_frame, cur_frame, specs, drifted_share=config.drifted_share),
                encoding="utf-8",
            )
    return report, excluded


def _features(
    ref_frame: pd.DataFrame,
    cur_frame: pd.DataFrame,
    reference: Path,
    current: Path,
    columns: list[str],
    categorical: set[str],
    excluded: list[str],
) -> list[str]:
    """The columns to compare; :class:`DatasetError` naming the columns when none is usable."""
    from driftloop.errors import DatasetError

    ref_cols, cur_cols = list(ref_frame.columns), list(cur_frame.columns)
    unknown = sorted({*columns, *categorical, *excluded} - set(ref_cols) - set(cur_cols))
    if unknown:
        raise DatasetError(
            f"the reference has no columns {unknown} (it has {_shown(ref_cols)}) "
            f"and neither has the current file"
        )
    missing = sorted({*columns, *categorical} - set(ref_cols))
    if missing:
        raise DatasetError(f"the reference has no columns {missing} (it has {_shown(ref_cols)})")
    candidates = [c for c in (columns or ref_cols) if c not in excluded]
    shared = [c for c in candidates if c in set(cur_cols)]
    if not shared:
        raise DatasetError(
            f"{reference.name} and {current.name} share no feature column: the reference has "
            f"{_shown(ref_cols)}, the current file has {_shown(cur_cols)}"
            + (f" (left out: {excluded})" if excluded else "")
        )
    return candidates


def _shown(names: list[str], limit: int = 20) -> str:
    if len(names) <= limit:
        return repr(names)
    return f"{names[:limit]!r} and {len(names) - limit} more"


def _hint(report: DriftReport, excluded: list[str]) -> None:
    """Say when a column that looks like a label or a prediction was tested as a feature."""
    suspicious = [f.name for f in report.features if f.name.lower() in LABEL_LIKE]
    if suspicious and not excluded:
        typer.echo(
            f"note: {suspicious} look like label or prediction columns and were tested as "
            "features; leave them out with --label-column / --prediction-column",
            err=True,
        )


def _print_table(report: DriftReport, reference: Path, current: Path, *, wide: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(value: float | None, spec: str = ".4g") -> str:
        return "-" if value is None else format(value, spec)

    rows = [
        (
            f.name,
            f.kind.value,
            f.method,
            fmt(f.statistic),
            fmt(f.p_value, ".3g"),
            fmt(f.p_adjusted, ".3g"),
            fmt(f.effect_size),
            "[bold red]yes[/]" if f.drifted else (f.note or "no"),
        )
        for f in report.features
    ]
    headers = ("feature", "kind", "method", "statistic", "p", "p (BH)", "effect", "drifted")
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    table = Table(title=f"Drift of {current.name} against {reference.name}")
    for header, widest in zip(headers, widths, strict=True):
        text = header in ("feature", "drifted")
        # Numbers, kinds and methods keep their full width (never cut to "7.69e-…"); feature
        # names and notes wrap instead, down to a readable width.
        table.add_column(
            header,
            justify="left" if header in ("feature", "kind", "method", "drifted") else "right",
            no_wrap=not text,
            min_width=min(widest, 16) if text else widest,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*row)
    console = Console()
    if wide:
        console = Console(width=int(Console(width=100_000).measure(table).maximum) + 2)
    else:
        # Below the narrowest readable table, print that width and let the terminal wrap lines.
        narrowest = sum(min(w, 16) if i in (0, 7) else w for i, w in enumerate(widths))
        narrowest += 3 * len(widths) + 1
        if console.width < narrowest:
            console = Console(width=narrowest)
    console.print(table)
    verdict = "[bold red]DRIFT[/]" if report.dataset_drift else "[green]no dataset drift[/]"
    console.print(f"{verdict}: {report.drifted_share:.0%} of features drifted")
