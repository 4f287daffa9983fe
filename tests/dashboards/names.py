"""Which metric names the dashboards and rules use, and which ones the code exports.

The code is the truth: a name is exported when a string literal in a component's source declares
it (prometheus_client adds ``_total`` to counters and ``_bucket``/``_sum``/``_count`` to
histograms, ``_info`` to info metrics).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from driftloop.dashboards import rule_files

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("monitor", "serving", "feedback", "driftloop")
BUILTIN = {"up", "ALERTS", "process_cpu_seconds_total", "process_resident_memory_bytes"}
SUFFIXES = ("", "_total", "_bucket", "_sum", "_count", "_info", "_created")
_DECLARED = re.compile(r"""["'](driftloop_[a-z0-9_]+)["']""")
_USED = re.compile(r"\b((?:driftloop|process)_[a-z0-9_]+|up|ALERTS)\b(?!\s*\()")
# PromQL words that look like names but are label values or functions.
_NOT_METRICS = {"driftloop_build_info_component"}


def declared() -> set[str]:
    """Every ``driftloop_*`` name a component's source code declares."""
    names: set[str] = set()
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts and "dashboards" not in path.parts:
                names.update(_DECLARED.findall(path.read_text(encoding="utf-8")))
    return names


def exported(name: str, names: set[str]) -> bool:
    """True when ``name`` (as PromQL sees it) comes from one of the declared ``names``."""
    if name in BUILTIN:
        return True
    return any(name == base + suffix for base in names for suffix in SUFFIXES)


def used_in(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (label names and values excluded)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_grouping = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_matchers
    )
    return set(_USED.findall(without_grouping)) - _NOT_METRICS


def rule_exprs() -> dict[str, str]:
    """Alert (and recording) rule expressions by rule name."""
    out = {}
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out[rule.get("alert") or rule.get("record")] = rule["expr"]
    return out


def documented() -> str:
    """The text of docs/metrics.md."""
    return (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
