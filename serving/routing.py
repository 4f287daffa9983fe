"""Traffic routing between champion and challenger: single, canary, sticky A/B, shadow.

A/B assignment hashes the sticky key with SHA-256 (not Python's per-process randomised
``hash()``), so a key lands on the same variant in every replica and after every restart.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from driftloop.contract import RoutingMode
from driftloop.errors import ConfigurationError

__all__ = ["Decision", "Mode", "RoutingPolicy", "Upstream", "choose", "stable_fraction"]


Mode = RoutingMode
"""How requests are split between champion and challenger: the contract's
:class:`~driftloop.contract.RoutingMode`, which the monitor writes and the sidecar follows."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """A model version and the base URL that serves it."""

    version: str
    url: str


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """The policy in force; ``revision`` 0 means it came from the flags."""

    mode: Mode
    champion: Upstream
    challenger: Upstream | None = None
    weight: float = 0.0
    sticky_key: str | None = None
    revision: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ConfigurationError(f"routing weight must be within 0..1, got {self.weight!r}")
        if self.mode is not Mode.single and self.challenger is None:
            raise ConfigurationError(f"routing mode {self.mode.value!r} needs a challenger")
        if self.sticky_key is not None and not self.sticky_key.startswith(("header:", "json:")):
            raise ConfigurationError(
                f"sticky key must be header:NAME or json:FIELD, got {self.sticky_key!r}"
            )

    @classmethod
    def from_json(cls, data: dict[str, Any], known: dict[str, str]) -> RoutingPolicy:
        """Parse the monitor's ``GET /v1/models/{name}/routing`` answer.

        A null url means the upstream already known for that version (``known``: version ->
        url). Raises :class:`ConfigurationError` naming what is wrong.
        """
        try:
            mode = Mode(data["mode"])
            champion = _upstream(data["champion"], known)
            challenger = _upstream(data["challenger"], known) if data.get("challenger") else None
            if mode is not Mode.single and challenger is None:
                mode = Mode.single
            return cls(
                mode=mode,
                champion=champion,
                challenger=challenger,
                weight=float(data.get("weight") or 0.0),
                sticky_key=data.get("sticky_key"),
                revision=int(data.get("revision") or 0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"routing policy {data!r} is not valid: {exc}") from exc


def _upstream(data: dict[str, Any], known: dict[str, str]) -> Upstream:
    version = str(data["version"])
    url = data.get("url") or known.get(version)
    if not url:
        raise ConfigurationError(f"no upstream URL known for version {version!r}")
    return Upstream(version=version, url=str(url).rstrip("/"))


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone: the first 8 bytes of its SHA-256."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 18446744073709551616.0


@dataclass(frozen=True, slots=True)
class Decision:
    """Who answers the client (``variant``/``upstream``), and who gets a shadow copy."""

    variant: str
    upstream: Upstream
    shadow: Upstream | None = None


def choose(policy: RoutingPolicy, key: str | None, rand: random.Random | None = None) -> Decision:
    """Route one request under ``policy``; ``key`` is the sticky key's value when present."""
    challenger = policy.challenger
    if challenger is None or policy.mode is Mode.single:
        return Decision("champion", policy.champion)
    if policy.mode is Mode.shadow:
        return Decision("champion", policy.champion, challenger)
    if policy.mode is Mode.ab and key is not None:
        share = stable_fraction(key)
    else:
        share = (rand or random).random()
    if share < policy.weight:
        return Decision("challenger", challenger)
    return Decision("champion", policy.champion)
