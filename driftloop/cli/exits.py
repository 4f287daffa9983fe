"""The exit codes every ``driftloop`` command uses, so scripts and CI can branch on them.

| code | meaning |
| --- | --- |
| 0 | done, nothing to report |
| 1 | a finding: drift (``--fail-on-drift``), an inferior challenger, stale dashboards, a failed
  smoke test |
| 2 | bad input: a flag, a file, a model name, a request the service refused (4xx) |
| 3 | a service is unreachable: the monitor, Grafana, a Bento or the database did not answer, or
  answered 5xx |

Usage errors found by the argument parser (unknown flag, missing argument) also exit 2.
"""

from __future__ import annotations

from typing import NoReturn

import typer

__all__ = [
    "BAD_INPUT",
    "EXIT_CODES",
    "FINDING",
    "OK",
    "UNREACHABLE",
    "exit_on_bad_settings",
    "fail",
    "http_status_code",
]

OK = 0
FINDING = 1
BAD_INPUT = 2
UNREACHABLE = 3

EXIT_CODES = {
    OK: "done, nothing to report",
    FINDING: "a finding: drift, an inferior challenger, stale dashboards, a failed smoke test",
    BAD_INPUT: "bad input: a flag, a file, a model name, a request the service refused (4xx)",
    UNREACHABLE: "a service is unreachable or answered 5xx (monitor, Grafana, Bento, database)",
}
"""The table ``docs/cli.md`` shows; a test checks the two agree."""


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def exit_on_bad_settings(exc: Exception) -> NoReturn:
    """Exit 2 with one line for a configuration or settings error; re-raise anything else (a
    bug keeps its traceback). Runs outside the command's context, so it exits by itself."""
    import sys

    import pydantic
    from pydantic_settings import SettingsError

    from driftloop.errors import DriftloopError

    if isinstance(exc, pydantic.ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        message = f"invalid settings: {problems}"
    elif isinstance(exc, SettingsError):
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        message = f"invalid settings: {exc}{cause}"
    elif isinstance(exc, DriftloopError):
        message = str(exc)
    else:
        raise exc
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(BAD_INPUT)


def http_status_code(status: int) -> int:
    """The exit code for a service's non-2xx answer: 4xx is bad input, anything else is the
    service failing (it said so with 5xx, or answered something no client expects)."""
    return BAD_INPUT if 400 <= status < 500 else UNREACHABLE
