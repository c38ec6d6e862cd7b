"""Feedback from kiosks and displays (impression, click, dismiss, add to list), stored as
`interaction` events through the ingestion writer, for attribution and retraining."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from edge_agent.api.auth import Caller, allow
from edge_agent.api.errors import NotReady
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.shoppers import profile as profiles
from models.events import MAX_ID_LENGTH, Interaction, InteractionAction, topic_for, utc_now

router = APIRouter(prefix=API_PREFIX, tags=["feedback"])
State = Annotated[ServingState, Depends(serving_state)]
# A commit takes milliseconds; seconds means the writer is in trouble, and the device retries.
COMMIT_TIMEOUT_S = 5.0
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^/#+\s]+$")]


class FeedbackIn(BaseModel):
    device_id: Id
    action: InteractionAction
    product_id: Id
    customer_id: Id | None = Field(default=None, description="the shopper's opaque id, from"
                                   " /v1/shoppers/lookup; one the store does not know is"
                                   " kept anonymous")
    context: Annotated[str, Field(max_length=MAX_ID_LENGTH)] = ""
    model_version: Annotated[str, Field(max_length=MAX_ID_LENGTH)] | None = None
    event_id: Id | None = Field(default=None, description="set it to make retries idempotent")


class FeedbackOut(BaseModel):
    event_id: str


@router.post("/feedback", status_code=201, response_model=FeedbackOut,
             summary="Record an impression, click, dismissal or add-to-list",
             responses={503: {"description": "could not be stored in time; retry"}})
def post_feedback(body: FeedbackIn, state: State,
                  _caller: Annotated[Caller, Depends(allow("kiosk", "display", "staff"))]
                  ) -> FeedbackOut:
    # Devices know shoppers by their opaque id; the store's history keeps the customer id.
    customer = (profiles.customer_for_device(state.reads.get(), body.customer_id)
                if body.customer_id is not None else None)
    event = Interaction(type="interaction", event_id=body.event_id or str(uuid.uuid4()),
                        store_id=state.settings.store_id, ts=utc_now(),
                        customer_id=customer, action=body.action,
                        product_id=body.product_id, context=body.context,
                        model_version=body.model_version)
    stored = state.ingest.submit(topic_for(event, body.device_id),
                                 event.model_dump_json().encode(), COMMIT_TIMEOUT_S)
    if not stored:
        raise NotReady("feedback could not be stored in time; retry with the same event_id",
                       event_id=event.event_id)
    return FeedbackOut(event_id=event.event_id)
