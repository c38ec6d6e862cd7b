"""Shared by the routes that answer about one shopper: the loaded models, and the one
translation of shopper errors into HTTP outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from edge_agent.api.errors import ConsentRequired, NotReady, UnknownCustomer
from edge_agent.api.state import ServingState
from edge_agent.modeling.loaded import LoadedModels
from edge_agent.shoppers import profile as profiles


@contextmanager
def shopper_errors() -> Iterator[None]:
    """Unknown shopper → 404 `unknown_customer`; no consent → 403 `consent_required`."""
    try:
        yield
    except profiles.ShopperNotFound as exc:
        raise UnknownCustomer(f"no shopper {exc.args[0]!r} in this store") from None
    except profiles.NoConsent as exc:
        raise ConsentRequired(str(exc)) from None


def current_models(state: ServingState) -> LoadedModels:
    """The models to answer with (read once per request), or 503 before any is loaded."""
    models = state.models.current
    if models is None:
        raise NotReady("no model is loaded yet; personal answers are unavailable")
    return models
