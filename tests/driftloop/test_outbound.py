"""Outbound targets under control: snapshot destinations inside configured roots, webhook URLs
that cannot reach link-local or metadata addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.outbound import (
    OutboundTargetError,
    check_resolved,
    check_snapshot_destination,
    check_webhook_url,
)

PREFIXES = ["s3://ml-data/driftloop/"]


@pytest.mark.parametrize(
    ("out", "why"),
    [
        ("/etc/driftloop", "outside snapshot_dir"),
        ("../../etc", "'..'"),
        ("sub/../../x", "'..'"),
        ("memory://stolen", "memory://"),
        ("simplecache::http://127.0.0.1:9/x", "chained"),
        ("filecache::s3://ml-data/driftloop/x", "chained"),
        ("http://127.0.0.1:9/upload", "outside the allowed roots"),
        ("webhdfs://internal:9870/x", "outside the allowed roots"),
        ("ftp://internal/x", "outside the allowed roots"),
        ("github://org:repo@/x", "outside the allowed roots"),
        ("s3://ml-data/driftloop-other/x", "outside the allowed roots"),
        ("file:///etc", "outside snapshot_dir"),
    ],
    ids=[
        "absolute",
        "dotdot",
        "inner-dotdot",
        "memory",
        "chain-http",
        "chain-cache",
        "http",
        "webhdfs",
        "ftp",
        "github",
        "prefix-lookalike",
        "file-url-outside",
    ],
)
def test_a_snapshot_destination_outside_the_roots_is_refused(
    tmp_path: Path, out: str, why: str
) -> None:
    with pytest.raises(OutboundTargetError, match=why.replace("(", r"\(")):
        check_snapshot_destination(out, str(tmp_path / "snapshots"), PREFIXES)


def test_destinations_inside_the_roots_are_accepted(tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    assert check_snapshot_destination(str(root / "a"), str(root), PREFIXES) == str(root / "a")
    assert check_snapshot_destination("team/a", str(root), PREFIXES) == str(root / "team" / "a")
    assert check_snapshot_destination((root / "b").as_uri(), str(root), []) == str(root / "b")
    assert check_snapshot_destination("s3://ml-data/driftloop/x", str(root), PREFIXES)
    # The operator may configure memory:// (tests, demos); a request may not invent it.
    assert check_snapshot_destination("memory://snaps/x", "memory://snaps", [])


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    root.mkdir()
    (root / "escape").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(OutboundTargetError, match="outside snapshot_dir"):
        check_snapshot_destination(str(root / "escape"), str(root), [])


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.GOOGLE.INTERNAL./x",
        "http://[fe80::1]/x",
        "http://[::ffff:169.254.169.254]/x",
        "http://[fd00:ec2::254]/x",
        "ftp://hooks.example/x",
        "file:///etc/passwd",
        "http:///no-host",
    ],
    ids=[
        "aws",
        "gcp",
        "gcp-case-dot",
        "ipv6-link-local",
        "mapped",
        "aws-ipv6",
        "ftp",
        "file",
        "no-host",
    ],
)
def test_webhook_urls_to_metadata_link_local_or_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(OutboundTargetError):
        check_webhook_url(url)


def test_the_setting_allows_private_targets_but_never_other_schemes() -> None:
    assert check_webhook_url("http://169.254.169.254/x", allow_private=True)
    with pytest.raises(OutboundTargetError):
        check_webhook_url("gopher://169.254.169.254/x", allow_private=True)


def test_receivers_in_the_cluster_and_on_loopback_are_accepted() -> None:
    for url in ("http://127.0.0.1:9000/hook", "https://trainer.ml.svc:8443/x", "http://10.0.0.7/"):
        assert check_webhook_url(url) == url
        check_resolved(url)


def test_a_name_resolving_to_a_link_local_address_is_refused_at_send_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    def resolve(host: str, *_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        # Stand-in for DNS: no resolver here serves a name pointing at 169.254.169.254.
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(OutboundTargetError, match="link-local"):
        check_resolved("http://innocent.example/hook")
