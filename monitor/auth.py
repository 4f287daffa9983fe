"""Bearer tokens with scopes. With no tokens configured the API is open (loopback only)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request, status

from driftloop.monitor.state import MonitorState, get_state
from driftloop.settings import Scope


def require(scope: Scope) -> Callable[..., None]:
    """A dependency that lets the request through only with a token carrying ``scope``."""

    def check(request: Request, state: MonitorState = Depends(get_state)) -> None:
        tokens = state.settings.tokens
        if not tokens:
            return
        header = request.headers.get("authorization", "")
        kind, _, presented = header.partition(" ")
        if kind.lower() != "bearer" or not presented:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing bearer token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        for token, scopes in tokens.items():
            if hmac.compare_digest(token.encode(), presented.encode()):
                if scope in scopes or Scope.admin in scopes:
                    return
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, detail=f"token lacks the {scope.value!r} scope"
                )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="unknown bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )

    return check
