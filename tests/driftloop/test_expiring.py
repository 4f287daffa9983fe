"""A value read at most once per TTL: reused within it, read again after it or after clear()."""

from __future__ import annotations

from collections.abc import Callable

from driftloop.expiring import Expiring


def counting() -> tuple[Callable[[], int], list[int]]:
    """A load that returns how many times it ran."""
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    return load, loads


def test_a_value_is_reused_until_cleared() -> None:
    load, loads = counting()
    value = Expiring(load, ttl_seconds=3600)
    assert [value.get() for _ in range(3)] == [1, 1, 1]
    value.clear()
    assert value.get() == 2
    assert len(loads) == 2


def test_a_value_past_its_ttl_is_loaded_again() -> None:
    load, _ = counting()
    value = Expiring(load, ttl_seconds=0)
    assert [value.get() for _ in range(3)] == [1, 2, 3]
