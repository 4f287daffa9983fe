"""Secrets never shown: credentials inside URLs are redacted wherever a URL is displayed."""

from __future__ import annotations

import pytest

from driftloop.urls import redact_document, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bob:pw@hooks.example/x", "https://REDACTED@hooks.example/x"),
        ("http://token@h:8080/p", "http://REDACTED@h:8080/p"),
        ("https://h/p?api_key=s3cret&x=1", "https://h/p?api_key=REDACTED&x=1"),
        (
            "https://h/p?access_token=a&Signature=b",
            "https://h/p?access_token=REDACTED&Signature=REDACTED",
        ),
        ("https://h/p?client_secret=a", "https://h/p?client_secret=REDACTED"),
        ("https://h/p?X-Amz-Security-Token=a", "https://h/p?X-Amz-Security-Token=REDACTED"),
        ("s3://bucket/prefix/data.parquet", "s3://bucket/prefix/data.parquet"),
        ("https://h/p?page=2", "https://h/p?page=2"),
        ("/var/lib/driftloop", "/var/lib/driftloop"),
        ("", ""),
    ],
    ids=[
        "user-password",
        "user-only",
        "api-key",
        "token-and-signature",
        "client-secret",
        "aws-presigned",
        "plain-s3",
        "harmless-query",
        "path",
        "empty",
    ],
)
def test_credentials_in_a_url_are_redacted_and_the_rest_kept(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)


def test_urls_inside_text_and_documents_are_redacted() -> None:
    text = "cannot reach https://u:hunter2@h/x?token=abc: refused"
    assert redact_text(text) == "cannot reach https://REDACTED@h/x?token=REDACTED: refused"
    document = {"url": "https://u:hunter2@h/", "nested": [{"uri": "http://h/?key=k"}], "n": 3}
    assert redact_document(document) == {
        "url": "https://REDACTED@h/",
        "nested": [{"uri": "http://h/?key=REDACTED"}],
        "n": 3,
    }


def test_a_malformed_url_never_raises() -> None:
    assert redact_url("http://[::1/x") == "http://[::1/x"
    assert redact_url("http://u:p@[::1/x") == "REDACTED"
