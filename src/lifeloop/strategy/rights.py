"""The customer's rights in the plan (客户权利): who may not be a candidate of which strategy.

Before suitability, arbitration and caps, a candidate is dropped when

* ``suppressed`` — the customer matches a purged person's keyed hashes (a later batch brought them back,
  PIPL Art. 47) and the strategy's purpose is marketing;
* ``no_personalisation`` — the customer opted out of personalised marketing (PIPL Art. 24) and the strategy
  is personalised (every strategy not declared ``personalised: false`` in config/strategies.yaml).

Dropped candidates take no cap, capacity or holdout place; the lists show the policy and why, and so does
``lifeloop why``. The send-time gate applies the same flags again (``lifeloop.execution.gate``). Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifeloop.config.strategies import StrategiesConfig
from lifeloop.store.ops.rights import NO_PERSONALISATION, SUPPRESSED
from lifeloop.strategy.history import History

if TYPE_CHECKING:
    import pyarrow as pa

Block = tuple[str, str]   # (dropping policy, detail)


def blocks(candidates: pa.Table, history: History, config: StrategiesConfig) -> list[Block | None]:
    """Per candidate: the rights policy that drops it and why, or None."""
    n = candidates.num_rows
    out: list[Block | None] = [None] * n
    out_of_marketing = history.flagged(SUPPRESSED)
    opted_out = history.flagged(NO_PERSONALISATION)
    if not n or not (out_of_marketing or opted_out):
        return out
    personalised = {s.id: s.personalised for s in config.strategies}
    for i, (who, sid, purpose) in enumerate(zip(candidates["customer_id"].to_pylist(),
                                                candidates["strategy"].to_pylist(),
                                                candidates["purpose"].to_pylist(), strict=True)):
        if who in out_of_marketing and purpose == "marketing":
            out[i] = (SUPPRESSED, "suppressed: a purged customer's identifiers came back in a later batch; "
                                  "no marketing (PIPL Art. 47)")
        elif who in opted_out and personalised.get(sid, True):
            out[i] = (NO_PERSONALISATION, f"no_personalisation: opted out of personalised marketing and strategy "
                                          f"{sid} is personalised (PIPL Art. 24)")
    return out
