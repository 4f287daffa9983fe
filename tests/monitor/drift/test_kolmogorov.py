"""The vendored Kolmogorov survival function returns exactly what ``scipy.stats.kstwo.sf`` does."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kstwo

from driftloop.monitor.drift.kolmogorov import kolmogn_sf

SIZES = [1, 2, 3, 7, 20, 100, 140, 141, 500, 1_000, 5_000, 100_000, 200_000]
"""Both sides of every branch: n <= 140 (Durbin, Pomeranz, Miller), n > 140 (Pelz-Good,
Durbin, 2*smirnov), n > 100,000."""


@pytest.mark.parametrize("n", SIZES)
def test_the_survival_function_equals_scipys_on_every_branch(n: int) -> None:
    grid = np.concatenate(
        [
            np.linspace(0.0, 1.0, 201),
            np.array([0.5 / n, 0.75 / n, 1.0 / n, 1.5 / n, (n - 1) / n]),
            np.sqrt(np.array([0.01, 0.5, 0.754693, 1.0, 2.2, 4.0, 10.0, 18.0, 400.0]) / n),
        ]
    )
    for d in np.unique(np.clip(grid, 0.0, 1.0)):
        assert kolmogn_sf(n, float(d)) == float(kstwo.sf(d, n)), (n, d)


def test_the_ks_path_loads_no_scipy_stats() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from driftloop.monitor.drift.ks import ks_pvalue\n"
        "ks_pvalue(0.05, 500, 700)\n"
        "print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
