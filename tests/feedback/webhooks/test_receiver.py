"""The example receiver (real HTTP on loopback) accepts only what Driftloop signed, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from driftloop.feedback.webhooks import encode_body, headers, new_message_id, new_secret
from tests.feedback.webhooks.servers import ReceiverServer

pytestmark = pytest.mark.integration

SECRET = new_secret()
BODY = encode_body({"model": "iris", "reason": "manual", "evidence": {}})


@pytest.fixture(scope="module")
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer([SECRET]) as server:
        yield server


def post(receiver: ReceiverServer, body: str, sent: dict[str, str]) -> httpx.Response:
    return httpx.post(receiver.url, content=body.encode(), headers=sent, timeout=5)


def test_a_signed_message_is_accepted_and_a_duplicate_acted_on_once(
    receiver: ReceiverServer,
) -> None:
    msg_id = new_message_id()
    sent = headers(msg_id, datetime.now(UTC), BODY, [SECRET])
    assert post(receiver, BODY, sent).status_code == 200
    again = headers(msg_id, datetime.now(UTC), BODY, [SECRET])
    assert post(receiver, BODY, again).status_code == 200
    got = receiver.received()
    assert got["deliveries"].count(msg_id) == 2
    assert [m["body"] for m in got["messages"] if m["webhook_id"] == msg_id] == [
        {"model": "iris", "reason": "manual", "evidence": {}}
    ]


def test_a_rotated_secret_is_accepted_while_the_old_one_still_signs() -> None:
    old, new = new_secret(), new_secret()
    with ReceiverServer([new]) as server:
        sent = headers(new_message_id(), datetime.now(UTC), BODY, [new, old])
        assert post(server, BODY, sent).status_code == 200


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("tampered body", "No matching signature"),
        ("wrong secret", "No matching signature"),
        ("stale timestamp", "too old"),
        ("future timestamp", "too new"),
        ("missing signature", "Missing required headers"),
    ],
)
def test_forged_or_replayed_messages_fail_verification(
    receiver: ReceiverServer, case: str, problem: str
) -> None:
    msg_id = new_message_id()
    now = datetime.now(UTC)
    body = BODY
    sent = headers(msg_id, now, BODY, [SECRET])
    if case == "tampered body":
        body = BODY.replace('"manual"', '"drift"')
    elif case == "wrong secret":
        sent = headers(msg_id, now, BODY, [new_secret()])
    elif case == "stale timestamp":
        sent = headers(msg_id, now - timedelta(minutes=10), BODY, [SECRET])
    elif case == "future timestamp":
        sent = headers(msg_id, now + timedelta(minutes=10), BODY, [SECRET])
    else:
        del sent["webhook-signature"]
    response = post(receiver, body, sent)
    assert response.status_code == 401
    assert problem in response.json()["detail"]
    got = receiver.received()
    assert msg_id not in got["deliveries"]
    assert msg_id in got["rejected"]
