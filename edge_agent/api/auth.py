"""API keys with roles. No key, or one this store did not issue: 401. A key whose role may
not use the endpoint: 403. Both answer in the one error shape (`edge_agent.api.errors`)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, ClassVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from edge_agent.api.errors import ServingError
from edge_agent.settings import MIN_API_KEY_LENGTH, ApiKey, Role

API_KEY_HEADER = "X-API-Key"
_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                       description="A key issued to a kiosk, display, staff device or admin")


MIN_KEY_LENGTH = MIN_API_KEY_LENGTH  # the settings refuse shorter keys, so none is valid


class NotSignedIn(ServingError):
    status_code = 401
    code = "unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": API_KEY_HEADER}


class NotPermitted(ServingError):
    status_code = 403
    code = "forbidden"


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
        raise NotSignedIn(f"send this device's API key in the {API_KEY_HEADER} header",
                          reason="missing_key")
    if len(presented) < MIN_KEY_LENGTH:
        # The minimum is no secret (it is in the docs); a key cut short when it was copied
        # into a device's settings is the usual cause.
        raise NotSignedIn(
            f"the API key sent is {len(presented)} characters long, but every key is at "
            f"least {MIN_KEY_LENGTH}: it was probably cut short when it was copied",
            reason="key_too_short")
    caller = request.app.state.serving.keyring.lookup(presented)
    if caller is None:
        raise NotSignedIn("this API key is not one this store issued", reason="unknown_key")
    return caller


def allow(*roles: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting only callers whose key has one of `roles` (admin always)."""
    permitted = set(roles) | {"admin"}

    async def check(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if caller.role not in permitted:
            raise NotPermitted(f"a {caller.role} key may not use this endpoint",
                               role=caller.role)
        return caller

    return check
