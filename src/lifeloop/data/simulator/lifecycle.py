"""Hidden lifecycle states (客户生命周期) and their daily transitions.

The simulator's customers move through these states; Lifeloop never sees them, only their traces in
the extracts (activity, balances, closures). docs/simulator.md lists the hazards below.
"""

from __future__ import annotations

import numpy as np

STAGES = ("prospect", "onboarding", "honeymoon", "growing", "mature", "declining", "dormant", "churned",
          "won_back")
S = {name: i for i, name in enumerate(STAGES)}
NOT_ARRIVED = -1
ONBOARDING_DAYS = 7
HONEYMOON_END = 90          # days after opening
WON_BACK_DAYS = 60

# daily hazards of leaving a state (row) for another (column); the rest of the day's mass stays put
_H = {
    ("prospect", "onboarding"): 1 / 150,
    ("growing", "mature"): 1 / 240, ("growing", "declining"): 1 / 900,
    ("mature", "declining"): 1 / 1100,
    ("declining", "mature"): 1 / 160, ("declining", "dormant"): 1 / 70, ("declining", "churned"): 1 / 300,
    ("dormant", "won_back"): 1 / 2500, ("dormant", "churned"): 1 / 2000,
}
HAZARD = np.zeros((len(STAGES), len(STAGES)))
for (a, b), h in _H.items():
    HAZARD[S[a], S[b]] = h
HAZARD[np.arange(len(STAGES)), np.arange(len(STAGES))] = 1 - HAZARD.sum(1)
CUM_HAZARD = np.cumsum(HAZARD, axis=1)
# where a honeymoon ends (growing, mature, declining)
AFTER_HONEYMOON = (np.array([S["growing"], S["mature"], S["declining"]]), np.array([0.55, 0.2, 0.25]))
# the state mix of customers who already banked here before the simulation starts (by tenure > 90 days)
INITIAL_MIX = (np.array([S["growing"], S["mature"], S["declining"], S["dormant"]]), np.array([0.16, 0.46, 0.06, 0.32]))
# multiplier of customer-initiated activity per state (honeymoon decays, see activity())
ACTIVITY = np.array([0.0, 2.2, 1.0, 1.15, 1.0, 0.35, 0.0, 0.0, 0.9])
INCOME = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.8])   # share of income still paid in here
ALIVE = np.array([False, True, True, True, True, True, True, False, True])   # holds open accounts
HONEYMOON_BOOST, HONEYMOON_DECAY_DAYS = 1.3, 30.0


def activity(stage: np.ndarray, days_open: np.ndarray) -> np.ndarray:
    """Activity multiplier: state level, with the honeymoon's excitement decaying after opening."""
    m = ACTIVITY[np.maximum(stage, 0)] * (stage >= 0)
    hm = (stage == S["honeymoon"]) | (stage == S["onboarding"])
    m[hm] *= 1 + HONEYMOON_BOOST * np.exp(-days_open[hm] / HONEYMOON_DECAY_DAYS)
    return m


def initial_stage(rng: np.random.Generator, days_open: np.ndarray,
                  prospect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States on day 0 of customers who are already here, and how many days they have been in them."""
    n = len(days_open)
    stage = np.full(n, NOT_ARRIVED, np.int8)
    in_stage = np.zeros(n, np.int32)
    here = days_open >= 0
    stage[here & (days_open < ONBOARDING_DAYS)] = S["onboarding"]
    stage[here & (days_open >= ONBOARDING_DAYS) & (days_open < HONEYMOON_END)] = S["honeymoon"]
    old = here & (days_open >= HONEYMOON_END)
    stage[old] = rng.choice(INITIAL_MIX[0], old.sum(), p=INITIAL_MIX[1])
    # dormant customers have typically been silent for a long time already
    in_stage[old] = (rng.random(old.sum()) * np.minimum(days_open[old] - HONEYMOON_END, 3 * 365)).astype(np.int32)
    in_stage[here & ~old] = days_open[here & ~old]
    stage[here & prospect] = S["prospect"]
    return stage, in_stage


def step(rng: np.random.Generator, stage: np.ndarray, stage_day: np.ndarray, open_day: np.ndarray, day: int,
         frozen: np.ndarray) -> np.ndarray:
    """One day of transitions; returns the new states (``frozen`` customers do not move today)."""
    new = stage.copy()
    days_open = day - open_day
    alive = stage >= 0
    u = rng.random(len(stage))
    # random hazards (vectorised categorical draw per current state)
    cum = CUM_HAZARD[np.maximum(stage, 0)]
    moved = (u[:, None] > cum).sum(1).astype(np.int8)
    random_states = alive & ~frozen & (moved != stage)
    new[random_states] = moved[random_states]
    # clock-driven transitions
    new[(stage == S["onboarding"]) & (days_open >= ONBOARDING_DAYS)] = S["honeymoon"]
    end_hm = (stage == S["honeymoon"]) & (days_open >= HONEYMOON_END)
    new[end_hm] = rng.choice(AFTER_HONEYMOON[0], end_hm.sum(), p=AFTER_HONEYMOON[1])
    new[(stage == S["won_back"]) & (day - stage_day >= WON_BACK_DAYS)] = S["growing"]
    return new
