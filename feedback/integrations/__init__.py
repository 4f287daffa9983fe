"""Registry integrations: MLflow Model Registry webhooks in, verdicts and lineage back.

``driftloop.feedback.integrations.mlflow.install`` plugs the receiver
(``POST /v1/integrations/mlflow``), the outbox's MLflow sender and the write-back job into the
monitor; the modules load the web stack, so this package re-exports nothing.
"""

__all__: list[str] = []
