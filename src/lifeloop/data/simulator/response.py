"""The response truth (响应真值): how simulated customers answer a contact, and what they do anyway.

Loaded from a YAML file (default: ``truth.yaml`` next to this module) through a strict model, so a
typo names the file, line and field. Compiled into arrays indexed by (offer, stage, tier) so that the
daily step and ``expected_effect`` are vectorised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from lifeloop.config.loader import load_model
from lifeloop.config.models import Strict
from lifeloop.data.simulator import products as P
from lifeloop.data.simulator.lifecycle import STAGES, S
from lifeloop.data.simulator.population import TIERS

DEFAULT_TRUTH = Path(__file__).with_name("truth.yaml")
StageName = Literal[STAGES]  # type: ignore[valid-type]
TierName = Literal[TIERS]    # type: ignore[valid-type]
ChannelName = Literal["sms", "push", "email", "call", "rm"]
CHANNELS: tuple[str, ...] = ("sms", "push", "email", "call", "rm")


class Factor(Strict):
    """Multipliers of the base rate and of the uplift for one stage or tier."""

    base: float = Field(1.0, ge=0)
    uplift: float = 1.0


class ChannelTruth(Strict):
    """How much a channel carries an offer's uplift, and when it starts to annoy."""

    uplift_multiplier: float = Field(1.0, ge=0)
    annoys_after: int | None = Field(None, ge=0)
    annoyed_uplift: float = Field(0.0, ge=-1, le=0)


class OfferTruth(Strict):
    """One offer: what converting means, the base rate, the true uplift and their modifiers."""

    description: str = ""
    kind: Literal["product", "inflow"]
    product_id: str | None = None
    base_rate: float = Field(ge=0, le=1)
    uplift: float = Field(ge=-1, le=1)
    amount_share: float = Field(0.2, ge=0)
    min_amount: float = Field(0.0, ge=0)
    max_amount: float = Field(1e9, ge=0)
    by_stage: dict[StageName, Factor] = {}  # type: ignore[valid-type]
    by_tier: dict[TierName, Factor] = {}    # type: ignore[valid-type]

    @model_validator(mode="after")
    def _product_known(self) -> OfferTruth:
        if self.kind == "product":
            if self.product_id is None:
                raise ValueError("an offer of kind 'product' needs product_id")
            if self.product_id not in P.INDEX:
                raise ValueError(f"unknown product_id {self.product_id!r}; products are: {', '.join(P.PRODUCT_IDS)}")
        if self.max_amount < self.min_amount:
            raise ValueError("max_amount is below min_amount")
        return self


class Truth(Strict):
    """The whole response truth."""

    window_days: int = Field(30, ge=1, le=365)
    fatigue_window_days: int = Field(30, ge=1, le=365)
    channels: dict[ChannelName, ChannelTruth]  # type: ignore[valid-type]
    offers: dict[str, OfferTruth] = Field(min_length=1)


def load_truth(path: str | Path | None = None) -> Truth:
    """Read and validate a response-truth YAML file (errors name file, line and field)."""

    truth, _ = load_model(Truth, path or DEFAULT_TRUTH)
    return truth


class CompiledTruth:
    """The truth as arrays: base[k, stage, tier], uplift[k, stage, tier], channel factors."""

    def __init__(self, truth: Truth):
        self.truth = truth
        self.offers = list(truth.offers)
        self.index = {o: i for i, o in enumerate(self.offers)}
        k, ns, nt = len(self.offers), len(STAGES), len(TIERS)
        self.base = np.zeros((k, ns, nt))
        self.uplift = np.zeros((k, ns, nt))
        for i, o in enumerate(truth.offers.values()):
            sb = np.array([o.by_stage.get(s, Factor()).base for s in STAGES])
            su = np.array([o.by_stage.get(s, Factor()).uplift for s in STAGES])
            tb = np.array([o.by_tier.get(t, Factor()).base for t in TIERS])
            tu = np.array([o.by_tier.get(t, Factor()).uplift for t in TIERS])
            self.base[i] = o.base_rate * sb[:, None] * tb[None, :]
            self.uplift[i] = o.uplift * su[:, None] * tu[None, :]
        # churned customers hold nothing and answer nobody; prospects only convert when asked
        self.base[:, S["churned"], :] = 0
        self.uplift[:, S["churned"], :] = 0
        self.base[:, S["prospect"], :] = 0
        self.base = np.clip(self.base, 0, 1)
        self.window = truth.window_days
        self.fatigue_window = truth.fatigue_window_days
        ch = [truth.channels.get(c, ChannelTruth()) for c in CHANNELS]
        self.channel_mult = np.array([c.uplift_multiplier for c in ch])
        self.annoys_after = np.array([c.annoys_after if c.annoys_after is not None else 10**9 for c in ch])
        self.annoyed_uplift = np.array([c.annoyed_uplift for c in ch])
        self.kind_product = np.array([o.kind == "product" for o in truth.offers.values()])
        self.product = np.array([P.INDEX[o.product_id] if o.product_id else -1 for o in truth.offers.values()])
        self.amount_share = np.array([o.amount_share for o in truth.offers.values()])
        self.min_amount = np.array([o.min_amount for o in truth.offers.values()])
        self.max_amount = np.array([o.max_amount for o in truth.offers.values()])

    def amount(self, offer: np.ndarray, wealth: np.ndarray) -> np.ndarray:
        """Money (RMB, rounded to 100) a conversion moves: a share of the customer's wealth, bounded."""
        a = np.clip(self.amount_share[offer] * wealth, self.min_amount[offer], self.max_amount[offer])
        return np.round(a / 100) * 100

    def organic_hazard(self, stage: np.ndarray, tier: np.ndarray) -> np.ndarray:
        """Daily probability (n, k) of converting to each offer without contact (base rate / window)."""
        s = np.maximum(stage, 0)
        h = self.base[:, s, tier].T / self.window
        h[stage < 0] = 0
        return h

    def probabilities(self, offer: np.ndarray, channel: np.ndarray, stage: np.ndarray, tier: np.ndarray,
                      recent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(base, treated) conversion probabilities over the window for contact rows.

        ``recent`` is the number of contacts on that channel in the fatigue window, this one included.
        """
        s = np.maximum(stage, 0)
        base = self.base[offer, s, tier]
        upl = self.uplift[offer, s, tier] * self.channel_mult[channel]
        annoyed = recent > self.annoys_after[channel]
        upl = np.where(annoyed, self.annoyed_uplift[channel], upl)
        upl = np.where(stage == S["churned"], 0.0, upl)
        return base, np.clip(base + upl, 0, 1)
