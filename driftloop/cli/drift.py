"""``driftloop drift REFERENCE CURRENT``: drift between two Parquet or CSV files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from driftloop.monitor.drift import DriftReport


def drift(
    reference: Path = typer.Argument(
        ..., help="Reference data (Parquet or CSV).", exists=True, dir_okay=False, readable=True
    ),
    current: Path = typer.Argument(
        ..., help="Current data (Parquet or CSV).", exists=True, dir_okay=False, readable=True
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    html: Path | None = typer.Option(None, "--html", help="Also write an Evidently HTML report."),
    columns: str | None = typer.Option(
        None, help="Comma-separated columns to compare (default: every reference column)."
    ),
    categorical: str | None = typer.Option(
        None, help="Comma-separated columns to treat as categorical even if they hold numbers."
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
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit with status 1 when the dataset drifted."
    ),
) -> None:
    """Compare CURRENT with REFERENCE feature by feature (KS and chi-square, BH-adjusted)."""
    from driftloop.contract import FeatureKind
    from driftloop.errors import DatasetError, DriftloopError
    from driftloop.monitor.drift import (
        DriftConfig,
        FeatureSpec,
        Reference,
        compare_frame,
        infer_specs,
    )
    from driftloop.monitor.reference import read_dataset
    from driftloop.settings import load_settings

    try:
        defaults = load_settings().drift
        config = DriftConfig(
            alpha=alpha if alpha is not None else defaults.alpha,
            materiality=materiality if materiality is not None else defaults.materiality,
            drifted_share=drifted_share if drifted_share is not None else defaults.drifted_share,
        )
        ref_frame = read_dataset(reference.read_bytes(), reference.suffix.lstrip("."))
        cur_frame = read_dataset(current.read_bytes(), current.suffix.lstrip("."))
        wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
        forced = {c.strip() for c in categorical.split(",") if c.strip()} if categorical else set()
        missing = sorted({*(wanted or []), *forced} - set(ref_frame.columns))
        if missing:
            raise DatasetError(f"the reference has no columns {missing}")
        specs = [
            FeatureSpec(s.name, FeatureKind.categorical) if s.name in forced else s
            for s in infer_specs(ref_frame, wanted)
        ]
        report = compare_frame(
            Reference.from_frame(ref_frame, specs), cur_frame, config, workers=workers
        )
        if html is not None:
            from driftloop.monitor.evaluation.report import evidently_html

            html.write_text(
                evidently_html(ref_frame, cur_frame, specs, drifted_share=config.drifted_share),
                encoding="utf-8",
            )
    except (DriftloopError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc

    if as_json:
        typer.echo(json.dumps(report.as_json()))
    else:
        _print_table(report, reference, current)
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(1)


def _print_table(report: DriftReport, reference: Path, current: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Drift of {current.name} against {reference.name}")
    for header in ("feature", "kind", "method", "statistic", "p", "p (BH)", "effect", "drifted"):
        table.add_column(
            header, justify="left" if header in ("feature", "kind", "method") else "right"
        )

    def fmt(value: float | None, spec: str = ".4g") -> str:
        return "-" if value is None else format(value, spec)

    for f in report.features:
        table.add_row(
            f.name,
            f.kind.value,
            f.method,
            fmt(f.statistic),
            fmt(f.p_value, ".3g"),
            fmt(f.p_adjusted, ".3g"),
            fmt(f.effect_size),
            "[bold red]yes[/]" if f.drifted else (f.note or "no"),
        )
    console = Console()
    console.print(table)
    verdict = "[bold red]DRIFT[/]" if report.dataset_drift else "[green]no dataset drift[/]"
    console.print(f"{verdict}: {report.drifted_share:.0%} of features drifted")
