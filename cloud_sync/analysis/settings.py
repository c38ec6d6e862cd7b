"""The analysis's settings: environment first, then the defaults here. Secrets stay out of
reprs. Model ids are Bedrock inference profiles (the `us.` cross-region ones by default)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cloud_sync.analysis.ab import ABConfig
from cloud_sync.analysis.cost import HAIKU_4_5, CostSettings

ENV_PREFIX = "EDGE_ANALYSIS_"
DEFAULT_REGION = "us-east-1"  # the `us.` inference profiles are served from US regions
DEFAULT_STATE_DIR = Path(".analysis")


@dataclass(frozen=True)
class BedrockSettings:
    model_id: str = HAIKU_4_5
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None  # the local double, or a VPC endpoint
    # Static keys, for the local double only; real runs take boto3's credential chain.
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 5.0
    # A 2,000-token tool answer takes Haiku well under a minute; longer is a stuck call.
    read_timeout_s: float = 60.0
    # botocore's standard retry mode: attempts in all (throttling, 5xx, model not ready).
    max_attempts: int = 4
    concurrency: int = 4  # calls in flight at once (on-demand quotas are per minute)
    breaker_threshold: int = 5  # consecutive failures that open the circuit
    breaker_cooldown_s: float = 60.0
    # False: never call Bedrock, whatever credentials are around (the demo shows the fallback
    # and must not spend a visitor's AWS money); every shopper gets "not configured".
    enabled: bool = True


@dataclass(frozen=True)
class AnalysisSettings:
    bedrock: BedrockSettings = field(default_factory=BedrockSettings)
    costs: CostSettings = field(default_factory=CostSettings)
    state_dir: Path = DEFAULT_STATE_DIR  # budget.sqlite and history.sqlite
    ab: ABConfig | None = None  # an A/B of models (arm A is `bedrock.model_id`)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AnalysisSettings:
        """EDGE_ANALYSIS_MODEL_ID, _REGION (else AWS_REGION), _ENDPOINT_URL,
        _DAILY_BUDGET_USD, _STATE_DIR; _AB_MODEL_B (turns the A/B on, arm A being
        MODEL_ID), _AB_SHARE_B (default 0.5), _AB_SALT; unset ones keep their defaults."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            return env.get(ENV_PREFIX + name) or None

        bedrock = BedrockSettings(
            model_id=get("MODEL_ID") or HAIKU_4_5,
            region=get("REGION") or env.get("AWS_REGION") or DEFAULT_REGION,
            endpoint_url=get("ENDPOINT_URL"))
        budget = get("DAILY_BUDGET_USD")
        try:
            costs = (CostSettings(daily_budget_usd=float(budget)) if budget
                     else CostSettings())
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}DAILY_BUDGET_USD: not a number: {budget!r}") from None
        ab = None
        if get("AB_MODEL_B"):
            share = get("AB_SHARE_B") or "0.5"
            try:
                ab = ABConfig(model_a=bedrock.model_id, model_b=get("AB_MODEL_B") or "",
                              share_b=float(share), salt=get("AB_SALT") or ABConfig.salt)
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}AB_SHARE_B: {exc}") from None
        return cls(bedrock=bedrock, costs=costs,
                   state_dir=Path(get("STATE_DIR") or DEFAULT_STATE_DIR), ab=ab)
