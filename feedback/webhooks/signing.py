"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.

A message is signed with every active secret and the signatures are joined by spaces, so a
receiver holding either the old or the new secret verifies it while the secret rotates.
Secrets are ``whsec_`` followed by the base64 of 24 to 64 random bytes, as the spec says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from driftloop.errors import ConfigurationError, DriftloopError

if TYPE_CHECKING:
    from driftloop.settings import Settings

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_...`` secret; raises :class:`ConfigurationError` naming it."""
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigurationError(f"webhook secret {_masked(secret)} must start with 'whsec_'")
    raw = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(
            f"webhook secret {_masked(secret)} is not base64 after 'whsec_'"
        ) from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ConfigurationError(
            f"webhook secret {_masked(secret)} decodes to {len(key)} bytes; "
            f"use {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}"
        )
    return key


def parse_secrets(value: str | Iterable[str] | None) -> list[str]:
    """Secrets from a setting: one string (several separated by spaces or commas) or a list."""
    if value is None:
        return []
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    out = [item.strip() for item in items if item and item.strip()]
    for item in out:
        decode_secret(item)
    return out


def configured_secrets(settings: Settings) -> list[str]:
    """The default webhook secrets of the settings (``DRIFTLOOP_WEBHOOK_SECRET``), parsed.

    Read at each use, so a rotation applies to messages already queued.
    """
    return parse_secrets(settings.webhook_secret)


def new_secret(nbytes: int = 32) -> str:
    """A fresh random ``whsec_`` secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def new_message_id() -> str:
    """A fresh ``webhook-id``: unique per message, kept across every retry and replay."""
    return "msg_" + secrets.token_urlsafe(18)


def timestamp_header(now: datetime) -> str:
    """The ``webhook-timestamp`` header: integer seconds since the epoch."""
    return str(int(now.timestamp()))


def sign(msg_id: str, timestamp: str, body: str | bytes, secret_list: Sequence[str]) -> str:
    """The ``webhook-signature`` header value: one ``v1,`` signature per secret, space-separated."""
    if not secret_list:
        raise ConfigurationError("no webhook secret configured; set DRIFTLOOP_WEBHOOK_SECRET")
    payload = body.encode() if isinstance(body, str) else body
    to_sign = f"{msg_id}.{timestamp}.".encode() + payload
    signatures = []
    for secret in secret_list:
        digest = hmac.new(decode_secret(secret), to_sign, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


def headers(
    msg_id: str, now: datetime, body: str | bytes, secret_list: Sequence[str]
) -> dict[str, str]:
    """Every header of one delivery attempt (the timestamp is the attempt's, the id is not)."""
    ts = timestamp_header(now)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": sign(msg_id, ts, body, secret_list),
    }


class SignatureError(DriftloopError, ValueError):
    """A delivery that does not verify; ``reason`` is malformed, stale or bad_signature."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def verify(
    msg_id: str | None,
    timestamp: str | None,
    body: bytes,
    signature_header: str | None,
    keys: Sequence[bytes],
    now: datetime,
    tolerance_seconds: float = 300.0,
) -> None:
    """Check a Standard-Webhooks-style signature (``v1,<base64 HMAC-SHA256 of "id.ts.body">``).

    Any of the space-separated ``v1,`` signatures may match any key (rotation). The signature is
    checked before the timestamp, so a stale delivery is an authentic one that came too late
    (a replay, or a clock off by more than the tolerance). Raises :class:`SignatureError`.
    """
    if not msg_id or not timestamp or not signature_header:
        raise SignatureError("malformed", "missing delivery id, timestamp or signature header")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise SignatureError(
            "malformed", f"timestamp {timestamp[:40]!r} is not an integer"
        ) from exc
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    expected = [hmac.new(key, to_sign, hashlib.sha256).digest() for key in keys]
    matched = False
    for part in signature_header.split():
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        try:
            presented = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched = matched or any(hmac.compare_digest(presented, e) for e in expected)
    if not matched:
        raise SignatureError("bad_signature", "no v1 signature matches the configured secret")
    age = now.timestamp() - sent_at
    if abs(age) > tolerance_seconds:
        raise SignatureError(
            "stale",
            f"timestamp {sent_at} is {age:+.0f} s from now; more than {tolerance_seconds:.0f} s "
            "(a replay, or a clock to fix)",
        )


def standard_keys(secret_list: Sequence[str]) -> list[bytes]:
    """The HMAC keys of ``whsec_`` secrets (base64-decoded, as Standard Webhooks says)."""
    return [decode_secret(secret) for secret in secret_list]


def _masked(secret: str) -> str:
    return repr(secret[:6] + "…" + secret[-4:]) if len(secret) > 12 else repr("…")
