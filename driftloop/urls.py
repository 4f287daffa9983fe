"""Secrets never shown: one helper that hides credentials carried inside URLs.

Webhook targets, registry URIs and snapshot destinations often embed a password
(``https://user:pw@host/``) or a token in the query (``?api_key=...``). Every response, page and
log line that shows such a URL passes it through :func:`redact_url` first. The helper is pure,
stdlib-only and never raises, so it is safe in a template or an exception handler.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = ["REDACTED", "is_secret_param", "redact_document", "redact_text", "redact_url"]

REDACTED = "REDACTED"

# Query parameter names that carry a secret: the exact names and anything containing these words.
_SECRET_WORDS = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "credential",
    "signature",
    "sig",
    "session",
    "cookie",
    "jwt",
    "bearer",
)
_SECRET_EXACT = frozenset({"code", "pass", "x-amz-security-token", "x-goog-signature", "sas"})
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def is_secret_param(name: str) -> bool:
    """True when a query parameter called ``name`` probably carries a credential."""
    lowered = name.lower()
    if lowered in _SECRET_EXACT:
        return True
    compact = lowered.replace("-", "_")
    return any(word in compact for word in _SECRET_WORDS)


def redact_url(url: str) -> str:
    """Return ``url`` with ``user:password@`` and secret-like query values replaced by REDACTED.

    ``https://bob:pw@h/p?api_key=1&x=2`` becomes ``https://REDACTED@h/p?api_key=REDACTED&x=2``.
    Anything that does not parse as a URL is returned unchanged unless it looks like one.
    """
    if not isinstance(url, str) or not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED if "@" in url else url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_param(name) for name, _ in pairs):
            query = "&".join(
                f"{quote(name, safe='')}="
                f"{REDACTED if is_secret_param(name) else quote(value, safe='')}"
                for name, value in pairs
            )
    fragment = parts.fragment
    if (
        fragment
        and ("=" in fragment)
        and any(is_secret_param(name) for name, _ in parse_qsl(fragment, keep_blank_values=True))
    ):
        fragment = REDACTED
    if netloc == parts.netloc and query == parts.query and fragment == parts.fragment:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_text(text: str) -> str:
    """Redact every URL found inside free text (an error message, a log line)."""
    if not isinstance(text, str) or "://" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        url = found.rstrip(".,;:)]}!?")  # punctuation that ends a sentence is not the URL's
        return redact_url(url) + found[len(url) :]

    return _URL_IN_TEXT.sub(one, text)


def redact_document(value: object) -> object:
    """A copy of a JSON-like value with every URL inside its strings redacted (keys kept)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact_document(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_document(item) for item in value]
    return value
