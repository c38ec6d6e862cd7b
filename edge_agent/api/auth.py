"""API keys with roles. No key: 401. A key whose role may not use the endpoint: 403."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from edge_agent.settings import ApiKey, Role

API_KEY_HEADER = "X-API-Key"
_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                       description="A key issued to a kiosk, display, staff device or admin")


@dataclass(frozen=True)
class Caller:
    name: str
    role: Role


class KeyRing:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = [(k.key.get_secret_value().encode(), Caller(k.name, k.role)) for k in keys]

    def lookup(self, presented: str) -> Caller | None:
        candidate = presented.encode()
        found = None
        for secret, caller in self._keys:
            # Compare against every key, in constant time, so timing reveals nothing.
            if hmac.compare_digest(secret, candidate):
                found = caller
        return found


async def _caller(request: Request, presented: Annotated[str | None, Security(_header)]) -> Caller:
    if not presented:
        raise HTTPException(401, detail=f"missing {API_KEY_HEADER} header",
                            headers={"WWW-Authenticate": API_KEY_HEADER})
    caller = request.app.state.serving.keyring.lookup(presented)
    if caller is None:
        raise HTTPException(401, detail="unknown API key",
                            headers={"WWW-Authenticate": API_KEY_HEADER})
    return caller


def allow(*roles: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting only callers whose key has one of `roles` (admin always)."""
    permitted = set(roles) | {"admin"}

    async def check(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if caller.role not in permitted:
            raise HTTPException(403, detail=f"a {caller.role} key may not use this endpoint")
        return caller

    return check
