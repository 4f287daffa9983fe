"""Bearer tokens with scopes. With no tokens configured the API is open (loopback only).

``admin`` implies every scope. ``read`` covers reads of configuration, results, lineage and
request ids (checked for every read by :mod:`driftloop.monitor.guard`); metrics and health are
open.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence

from fastapi import Depends, HTTPException, Request, status

from driftloop.settings import Scope
from driftloop.web.state import MonitorState, get_state


def authorize(
    header: str, tokens: Mapping[str, Sequence[Scope]], scope: Scope
) -> HTTPException | None:
    """None when the ``Authorization`` header carries a token with ``scope``; else the refusal.

    Every configured token is compared in constant time (no early exit on the first byte).
    """
    if not tokens:
        return None
    kind, _, presented = header.partition(" ")
    if kind.lower() != "bearer" or not presented:
        return HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing bearer token (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    for token, scopes in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            if scope in scopes or Scope.admin in scopes:
                return None
            return HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"token lacks the {scope.value!r} scope"
            )
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="unknown bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require(scope: Scope) -> Callable[..., None]:
    """A dependency that lets the request through only with a token carrying ``scope``."""

    def check(request: Request, state: MonitorState = Depends(get_state)) -> None:
        error = authorize(request.headers.get("authorization", ""), state.settings.tokens, scope)
        if error is not None:
            raise error

    return check
