"""The demo: runs real Driftloop processes on loopback and shows what they did."""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.demo.run import run_demo

__all__ = ["run_demo"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.demo.run": ("run_demo",),
    },
)
