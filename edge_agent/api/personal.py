"""Shared by the routes that answer about one shopper: the loaded models, the model answers
(through the shopper memo), and the one translation of shopper errors into HTTP outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Path

from edge_agent.api.errors import ConsentRequired, NotReady, UnknownCustomer
from edge_agent.api.state import ServingState
from edge_agent.modeling.loaded import LoadedModels
from edge_agent.shoppers import profile as profiles
from edge_agent.shoppers.recommend import CANDIDATES, popular_products
from edge_agent.shoppers.timing import CategoryTiming, timed_categories, timings_of
from models.events import MAX_ID_LENGTH, utc_now

# Devices name a shopper by the opaque id a loyalty-number lookup returned, never by the
# loyalty system's customer id (often sequential: a device could walk the list).
ShopperId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH,
                                description="the shopper's opaque id, from /v1/shoppers/lookup")]


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


def device_profile(state: ServingState, shopper_id: str) -> profiles.Profile:
    """The profile of the shopper a device names by their opaque id (404 if unknown)."""
    with shopper_errors():
        return profiles.load_device_profile(state.reads.get(), shopper_id)


def consenting_profile(state: ServingState, shopper_id: str) -> profiles.Profile:
    """The shopper's profile, for an answer that needs their consent to personalization."""
    profile = device_profile(state, shopper_id)
    with shopper_errors():
        profiles.require_personalization(profile)
    return profile


async def ranking(state: ServingState, profile: profiles.Profile, models: LoadedModels,
                  now: datetime) -> list[tuple[str, float]]:
    """The ranker's best candidates for this shopper, before any store rule (the bundle must
    carry a ranker); raises `ModelsTooSlow` past the request's deadline."""
    ranker = models.ranker
    assert ranker is not None and profile.features is not None
    baskets = profile.features.baskets

    async def compute() -> list[tuple[str, float]]:
        # Features are this code's own numpy work, bounded by the shopper's size (and
        # checked at load on the widest shopper): on the event loop, where they cost least.
        # The bundle's ONNX graph, which could be slow on some input, goes to a model
        # thread (and releases the GIL there, so it does not slow this loop either) unless
        # the smoke test found it fast enough for the loop (edge_agent/api/model_calls.py).
        items, x = ranker.candidates_of(baskets, now.timestamp())
        scores = await state.model_calls.run(lambda: ranker.score(x),
                                             models.on_loop_key("nbr"))
        return ranker.top(items, scores, CANDIDATES)

    return await state.memo.get_or_run("ranking", profile, models.version, compute)


async def timings(state: ServingState, profile: profiles.Profile, models: LoadedModels,
                  now: datetime) -> list[CategoryTiming]:
    """Purchase timing per category for this shopper; `ModelsTooSlow` past the deadline."""
    timing = models.timing

    async def compute() -> list[CategoryTiming]:
        pairs = timed_categories(profile, models)
        if not pairs:
            return []
        assert timing is not None and profile.features is not None
        x = timing.features(pairs, profile.features.trips, now.timestamp())  # as in ranking
        outputs = await state.model_calls.run(lambda: timing.score(x),
                                              models.on_loop_key("timing"))
        return timings_of(pairs, timing.predictions_from(outputs), now)

    return await state.memo.get_or_run("timing", profile, models.version, compute)


def popular(state: ServingState) -> list[tuple[str, float]]:
    """The store's best sellers of the week: an aggregate over daily sales, shared by every
    shopper without personal suggestions, so computed once per cache period."""
    return state.cache.get_or_compute("popular", state.settings.trending_cache_s,
                                      lambda: popular_products(state.reads.get(), utc_now()))
