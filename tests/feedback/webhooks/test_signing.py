"""Signatures match the Standard Webhooks reference library, with several secrets for rotation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from driftloop.errors import ConfigurationError
from driftloop.feedback.webhooks import headers, new_message_id, new_secret, parse_secrets, sign


def test_signature_equals_the_reference_library() -> None:
    secret = new_secret()
    when = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    body = json.dumps({"model": "iris", "reason": "drift"})
    ours = sign("msg_1", str(int(when.timestamp())), body, [secret])
    assert ours == Webhook(secret).sign("msg_1", when, body)


def test_every_active_secret_signs_so_either_verifies_during_rotation() -> None:
    old, new = new_secret(), new_secret()
    body = '{"model":"iris"}'
    sent = headers(new_message_id(), datetime.now(UTC), body, [new, old])
    assert len(sent["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, sent) == {"model": "iris"}
    assert Webhook(new).verify(body, sent) == {"model": "iris"}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(new_secret()).verify(body, sent)


def test_message_ids_are_unique_and_header_safe() -> None:
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("msg_") and " " not in i for i in ids)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("s3cret", "must start with 'whsec_'"),
        ("whsec_$$$$", "not base64"),
        ("whsec_c2hvcnQ=", "decodes to 5 bytes"),
    ],
    ids=["no-prefix", "not-base64", "too-short"],
)
def test_bad_secrets_are_refused_with_the_problem_named(value: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        parse_secrets(value)


def test_settings_may_list_several_secrets() -> None:
    one, two = new_secret(), new_secret()
    assert parse_secrets(f"{one} {two}") == [one, two]
    assert parse_secrets(f"{one},{two}") == [one, two]
    assert parse_secrets(None) == []


def test_signing_without_a_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="DRIFTLOOP_WEBHOOK_SECRET"):
        sign("msg_1", "1", "{}", [])
