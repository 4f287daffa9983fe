"""Signed retraining webhooks: the durable outbox, Standard Webhooks signing and delivery."""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.feedback.webhooks.delivery import AttemptResult, Deliverer, retry_delay
    from driftloop.feedback.webhooks.metrics import WebhookMetrics
    from driftloop.feedback.webhooks.outbox import (
        UnknownEndpointError,
        UnknownMessageError,
        enable_endpoint,
        encode_body,
        enqueue,
        get_message,
        replay,
    )
    from driftloop.feedback.webhooks.signing import (
        headers,
        new_message_id,
        new_secret,
        parse_secrets,
        sign,
    )

__all__ = [
    "AttemptResult",
    "Deliverer",
    "UnknownEndpointError",
    "UnknownMessageError",
    "WebhookMetrics",
    "enable_endpoint",
    "encode_body",
    "enqueue",
    "get_message",
    "headers",
    "new_message_id",
    "new_secret",
    "parse_secrets",
    "replay",
    "retry_delay",
    "sign",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.feedback.webhooks.delivery": ("AttemptResult", "Deliverer", "retry_delay"),
        "driftloop.feedback.webhooks.metrics": ("WebhookMetrics",),
        "driftloop.feedback.webhooks.outbox": (
            "UnknownEndpointError",
            "UnknownMessageError",
            "enable_endpoint",
            "encode_body",
            "enqueue",
            "get_message",
            "replay",
        ),
        "driftloop.feedback.webhooks.signing": (
            "headers",
            "new_message_id",
            "new_secret",
            "parse_secrets",
            "sign",
        ),
    },
)
