"""``verify``: the one Standard Webhooks verifier, for our own signatures and MLflow's alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftloop.feedback.webhooks.signing import (
    SignatureError,
    new_secret,
    sign,
    standard_keys,
    timestamp_header,
    verify,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BODY = b'{"model":"iris"}'


def test_our_own_signature_verifies_with_the_secrets_key_and_any_rotated_one() -> None:
    old, new = new_secret(), new_secret()
    ts = timestamp_header(NOW)
    header = sign("msg_1", ts, BODY, [new, old])  # both signatures while the secret rotates
    verify("msg_1", ts, BODY, header, standard_keys([old]), NOW)
    verify("msg_1", ts, BODY, header, standard_keys([new]), NOW)
    with pytest.raises(SignatureError, match="no v1 signature matches") as caught:
        verify("msg_1", ts, BODY, header, standard_keys([new_secret()]), NOW)
    assert caught.value.reason == "bad_signature"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"msg_id": "msg_2"}, "bad_signature"),
        ({"body": b'{"model":"wine"}'}, "bad_signature"),
        ({"now": NOW + timedelta(seconds=301)}, "stale"),
        ({"now": NOW - timedelta(seconds=301)}, "stale"),
        ({"header": "v2,abc"}, "bad_signature"),
        ({"header": "v1,not base64!"}, "bad_signature"),
        ({"header": None}, "malformed"),
        ({"timestamp": "soon"}, "malformed"),
    ],
    ids=["other-id", "other-body", "old", "future", "other-version", "garbage", "none", "bad-ts"],
)
def test_anything_changed_or_late_is_refused_with_its_reason(
    change: dict[str, object], reason: str
) -> None:
    secret = new_secret()
    ts = timestamp_header(NOW)
    args: dict[str, object] = {
        "msg_id": "msg_1",
        "timestamp": ts,
        "body": BODY,
        "header": sign("msg_1", ts, BODY, [secret]),
        "now": NOW,
    }
    args.update(change)
    with pytest.raises(SignatureError) as caught:
        verify(
            args["msg_id"],  # type: ignore[arg-type]
            args["timestamp"],  # type: ignore[arg-type]
            args["body"],  # type: ignore[arg-type]
            args["header"],  # type: ignore[arg-type]
            standard_keys([secret]),
            args["now"],  # type: ignore[arg-type]
        )
    assert caught.value.reason == reason


def test_a_timestamp_inside_the_tolerance_passes() -> None:
    secret = new_secret()
    ts = timestamp_header(NOW)
    header = sign("msg_1", ts, BODY, [secret])
    verify("msg_1", ts, BODY, header, standard_keys([secret]), NOW + timedelta(seconds=299))
