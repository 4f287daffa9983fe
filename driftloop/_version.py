"""The installed distribution's version, read once when ``driftloop.__version__`` is first used."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("driftloop")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
