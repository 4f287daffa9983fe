"""The public surface of ``driftloop.serving`` and what importing it drags in."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("scipy", "pandas", "sqlalchemy", "evidently", "prometheus_client", "bentoml")


def test_importing_serving_loads_nothing_heavy() -> None:
    code = (
        "import sys, driftloop.serving, driftloop.serving.bento; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
