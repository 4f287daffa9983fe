"""Outbound targets under control: where a webhook may be POSTed and where a snapshot may go.

Two checks, both pure and stdlib-only:

- :func:`check_webhook_url` refuses a receiver URL that is not http(s) or that names a link-local
  or cloud-metadata address (``169.254.169.254``, ``fe80::/10``, ``metadata.google.internal``),
  unless the operator allowed private targets. :func:`check_resolved` repeats the address check on
  what the name resolves to, right before a POST (a public name may point at a metadata address).
- :func:`check_snapshot_destination` keeps a snapshot request's ``out`` inside the configured
  roots: under ``snapshot_dir`` or under one of the allowed URL prefixes, never a chained fsspec
  URL (``simplecache::http://...``), never ``memory://``, never a path with ``..``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit

from driftloop.errors import ValidationError
from driftloop.urls import redact_url

__all__ = [
    "METADATA_HOSTS",
    "OutboundTargetError",
    "check_resolved",
    "check_snapshot_destination",
    "check_webhook_url",
]

METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)
"""Names of cloud instance-metadata services (they answer with credentials)."""

_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)


class OutboundTargetError(ValidationError):
    """A URL or destination points somewhere Driftloop may not send data."""


def _blocked_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_link_local:
        return f"{address} is a link-local address (cloud metadata services live there)"
    if address.is_unspecified or address.is_multicast:
        return f"{address} is not a unicast address"
    return None


def check_webhook_url(url: str, *, allow_private: bool = False) -> str:
    """Return ``url`` when it may receive webhooks; raise :class:`OutboundTargetError` naming why.

    Loopback and private-network receivers are allowed (a training system in the same cluster);
    link-local and metadata targets are refused unless ``allow_private``.
    """
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise OutboundTargetError(f"webhook URL {shown!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise OutboundTargetError(f"webhook URL {shown!r} must be an http:// or https:// URL")
    if allow_private:
        return url
    name = host.rstrip(".").lower()
    if name in METADATA_HOSTS:
        raise OutboundTargetError(
            f"webhook URL {shown!r} names the metadata service {name!r} "
            "(set DRIFTLOOP_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true to allow)"
        )
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return url
    why = _blocked_address(address)
    if why is not None:
        raise OutboundTargetError(
            f"webhook URL {shown!r} refused: {why} "
            "(set DRIFTLOOP_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true to allow)"
        )
    return url


def check_resolved(url: str, *, allow_private: bool = False) -> None:
    """Resolve ``url``'s host and refuse it when any address is link-local or metadata.

    A name that does not resolve passes: the POST then fails like any unreachable receiver.
    """
    check_webhook_url(url, allow_private=allow_private)
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except ValueError:
            continue
        why = _blocked_address(address)
        if why is not None:
            raise OutboundTargetError(f"webhook host {host!r} resolves to {why}")


def _has_dotdot(path: str) -> bool:
    return any(part == ".." for part in path.replace("\\", "/").split("/"))


def _is_url(value: str) -> bool:
    return "://" in value


def check_snapshot_destination(out: str, snapshot_dir: str, allowed_prefixes: list[str]) -> str:
    """Return ``out`` when a snapshot may be written there, else raise naming the roots.

    Local paths must lie inside ``snapshot_dir`` (relative paths are taken under it); URLs must
    start with ``snapshot_dir`` (when it is a URL) or one of ``allowed_prefixes``.
    """
    shown = redact_url(out)
    if not out or "\x00" in out:
        raise OutboundTargetError("snapshot destination is empty or has a NUL byte")
    if "::" in out:
        raise OutboundTargetError(
            f"snapshot destination {shown!r} is a chained fsspec URL (::): not allowed"
        )
    if _has_dotdot(out):
        raise OutboundTargetError(f"snapshot destination {shown!r} has '..': not allowed")
    lowered = out.lower()
    roots = [snapshot_dir, *allowed_prefixes]
    if _is_url(out) and not lowered.startswith("file://"):
        for prefix in roots:
            if _is_url(prefix) and _under_prefix(out, prefix):
                return out  # configured by the operator (even memory:// for tests and demos)
        if lowered.startswith("memory:"):
            raise OutboundTargetError(f"snapshot destination {shown!r}: memory:// is not allowed")
        raise OutboundTargetError(
            f"snapshot destination {shown!r} is outside the allowed roots "
            f"(snapshot_dir and DRIFTLOOP_SNAPSHOT_ALLOWED_PREFIXES: "
            f"{[redact_url(r) for r in roots]})"
        )
    path = out[len("file://") :] if lowered.startswith("file://") else out
    local_roots = [
        r[len("file://") :] if r.lower().startswith("file://") else r
        for r in roots
        if not _is_url(r) or r.lower().startswith("file://")
    ]
    if not local_roots:
        raise OutboundTargetError(
            f"snapshot destination {shown!r} is a local path but no local root is configured"
        )
    for root in local_roots:
        base = os.path.realpath(root)
        target = os.path.realpath(path if os.path.isabs(path) else os.path.join(root, path))
        if target == base or target.startswith(base.rstrip(os.sep) + os.sep):
            return target
    raise OutboundTargetError(
        f"snapshot destination {shown!r} is outside snapshot_dir {local_roots[0]!r}"
    )


def _under_prefix(url: str, prefix: str) -> bool:
    if url == prefix or url.rstrip("/") == prefix.rstrip("/"):
        return True
    return url.startswith(prefix if prefix.endswith("/") else prefix + "/")
