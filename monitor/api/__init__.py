"""The monitor's core HTTP API, one ``router`` per module: ``records`` (``POST /v1/records``),
``models`` (``/v1/models``) and ``health`` (``/healthz``, ``/readyz``). The app factory includes
them; nothing here is imported by name from outside the monitor."""

__all__: list[str] = []
