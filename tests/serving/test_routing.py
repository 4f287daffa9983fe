"""Routing: canary split, sticky A/B by a stable hash, shadow copies, policies from JSON."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from driftloop.errors import ConfigurationError
from driftloop.serving.routing import Mode, RoutingPolicy, Upstream, choose, stable_fraction
from driftloop.serving.sidecar import policy_from_settings
from driftloop.settings import SidecarSettings

CHAMPION = Upstream("v1", "http://127.0.0.1:1")
CHALLENGER = Upstream("v2", "http://127.0.0.1:2")


def test_stable_fraction_is_sha256_based_and_the_same_in_another_process() -> None:
    # Golden values: the first 8 bytes of sha256("alice") / 2**64, computed independently.
    assert stable_fraction("alice") == pytest.approx(0.1712650529798836)
    assert stable_fraction("user-1") == pytest.approx(0.7764059241441005)
    code = "from driftloop.serving.routing import stable_fraction; print(stable_fraction('bob'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(other.stdout) == stable_fraction("bob")


def test_canary_sends_about_weight_of_traffic_to_the_challenger() -> None:
    policy = RoutingPolicy(Mode.canary, CHAMPION, CHALLENGER, weight=0.2)
    rand = random.Random(7)
    n = 20_000
    hits = sum(choose(policy, None, rand).variant == "challenger" for _ in range(n))
    sigma = (n * 0.2 * 0.8) ** 0.5
    assert abs(hits - n * 0.2) < 4 * sigma


def test_ab_assignment_of_a_key_never_changes_and_follows_the_weight() -> None:
    policy = RoutingPolicy(Mode.ab, CHAMPION, CHALLENGER, weight=0.5, sticky_key="header:X-User-ID")
    first = {f"user-{i}": choose(policy, f"user-{i}").variant for i in range(2000)}
    for _ in range(3):
        assert {k: choose(policy, k, random.Random()).variant for k in first} == first
    share = sum(v == "challenger" for v in first.values()) / len(first)
    assert 0.45 < share < 0.55


def test_shadow_answers_with_the_champion_and_copies_to_the_challenger() -> None:
    decision = choose(RoutingPolicy(Mode.shadow, CHAMPION, CHALLENGER), None)
    assert (decision.variant, decision.upstream, decision.shadow) == (
        "champion",
        CHAMPION,
        CHALLENGER,
    )


def test_single_mode_ignores_the_challenger() -> None:
    policy = RoutingPolicy(Mode.single, CHAMPION, CHALLENGER, weight=1.0)
    assert {choose(policy, None).variant for _ in range(50)} == {"champion"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": Mode.canary, "challenger": None}, "needs a challenger"),
        ({"mode": Mode.canary, "weight": 1.5}, "within 0..1"),
        ({"mode": Mode.ab, "sticky_key": "cookie:x"}, "header:NAME or json:FIELD"),
    ],
    ids=["no-challenger", "weight", "sticky-key"],
)
def test_invalid_policies_are_refused_naming_the_problem(kwargs: dict, match: str) -> None:
    base = {"mode": Mode.canary, "champion": CHAMPION, "challenger": CHALLENGER, "weight": 0.1}
    with pytest.raises(ConfigurationError, match=match):
        RoutingPolicy(**{**base, **kwargs})


def test_a_policy_from_the_monitor_resolves_null_urls_from_known_versions() -> None:
    data = {
        "model": "iris",
        "mode": "canary",
        "weight": 0.25,
        "sticky_key": None,
        "champion": {"version": "v1", "url": None},
        "challenger": {"version": "v2", "url": "http://127.0.0.1:9/"},
        "revision": 4,
        "updated_at": "2026-01-01T00:00:00Z",
    }
    policy = RoutingPolicy.from_json(data, {"v1": "http://127.0.0.1:1"})
    assert policy == RoutingPolicy(
        Mode.canary, CHAMPION, Upstream("v2", "http://127.0.0.1:9"), weight=0.25, revision=4
    )


def test_a_policy_naming_an_unknown_version_without_url_is_refused() -> None:
    data = {"mode": "single", "weight": 0, "champion": {"version": "v9", "url": None}}
    with pytest.raises(ConfigurationError, match="no upstream URL known for version 'v9'"):
        RoutingPolicy.from_json(data, {"v1": "http://127.0.0.1:1"})


def test_flags_make_the_initial_policy() -> None:
    base = {"model": "iris", "champion_url": "http://127.0.0.1:1/", "champion_version": "v1"}
    assert policy_from_settings(SidecarSettings(**base)) == RoutingPolicy(
        Mode.single, CHAMPION, weight=0.1
    )
    with_challenger = {**base, "challenger_url": "http://127.0.0.1:2", "challenger_version": "v2"}
    canary = policy_from_settings(SidecarSettings(**with_challenger, weight=0.3))
    assert (canary.mode, canary.weight, canary.challenger) == (Mode.canary, 0.3, CHALLENGER)
    ab = policy_from_settings(SidecarSettings(**with_challenger, mode="ab"))
    assert (ab.mode, ab.sticky_key) == (Mode.ab, "header:X-User-ID")
    # A mode without a challenger serves the champion until the monitor's policy names one.
    assert policy_from_settings(SidecarSettings(**base, mode="shadow")).mode is Mode.single
