"""The demo: runs real Driftloop processes on loopback and shows what they did."""

from driftloop.demo.run import run_demo

__all__ = ["run_demo"]
