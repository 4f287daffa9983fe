"""The demo's console output when it is not a terminal, and why a rollout did not promote."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from driftloop.demo.run import Demo, why_not_promoted


def test_progress_goes_out_line_by_line_when_output_is_not_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120)
    assert not console.is_terminal
    demo = SimpleNamespace(plain=not console.is_terminal, console=console, _said="", _said_at=0.0)
    Demo.say(demo, "  traffic: 10 sent", every=15.0)  # type: ignore[arg-type]
    Demo.say(demo, "  traffic: 20 sent", every=15.0)  # type: ignore[arg-type]  # too soon
    Demo.say(demo, "[1] Train the champion ...")  # type: ignore[arg-type]
    Demo.say(demo, "[1] Train the champion ...")  # type: ignore[arg-type]  # repeats are dropped
    assert out.getvalue().splitlines() == ["  traffic: 10 sent", "[1] Train the champion ..."]


def test_a_rollback_is_explained_with_its_reason_and_evidence() -> None:
    body = {
        "rollout": {"status": "rolled_back", "step": 1},
        "decisions": [
            {"decision": "start"},
            {
                "decision": "rollback",
                "actor": "auto",
                "from_step": 1,
                "reason": "latency: guardrail: the challenger's latency is higher than tolerated",
                "evidence": {
                    "metric": "accuracy",
                    "margin": 0.01,
                    "metric_values": {"champion": 0.65, "challenger": 0.91},
                    "difference": {"running_lower": 0.2, "running_upper": 0.3},
                    "guardrails": {
                        "latency_p99": {
                            "note": "p75 decides",
                            "ok": False,
                            "champion_ms": 50.0,
                            "challenger_ms": 116.0,
                        },
                        "error_rate": {"ok": True},
                    },
                    "srm": {"ok": True},
                },
            },
        ],
    }
    text = why_not_promoted(body)
    assert "challenger rolled back at step 1 by auto: latency" in text
    assert "champion 0.65 vs challenger 0.91" in text
    assert "p75 decides: ok=False" in text
