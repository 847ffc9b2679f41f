"""The simulator's true uplift beside each estimate on the board — in the demo only (docs/simulator.md).

A demo workspace (``lifeloop demo``) keeps, under ``demo/``, the response truth its simulated bank was made
with (``demo/truth.yaml``, a copy of the package's ``templates/demo/truth.yaml``) and, for every day of the
closed loop, what the simulator knew of each contact it received (``demo/contacts-truth/DAY.parquet``: the
rows of :func:`lifeloop.data.simulator.stepping.expected_effect` — each treated contact's true incremental
conversion probability and money, 0 for a control row or an outcome already decided). A real bank has no such
oracle: in any other workspace nothing here runs and the board is unchanged.

The true uplift of a strategy is computed on the very entries and days its review measured: per entry, every
contact the simulator received for the entry's customer and offer on or after the entry's day counts (another
strategy's too, as the measured outcome does), weighted by the share of the truth's conversion window
(``window_days``: a decided conversion falls on a day drawn evenly in it) that lies inside the entry's observed
window; then the treated entries' mean minus the control entries' mean. Which outcome the truth can speak for:

- ``purchased`` (a product offer): the incremental conversions — exactly what the simulator decides;
- ``purchase_amount``: the incremental money (conversion probability x the amount the customer would move);
- ``fee_income``: that money x the product's fee rate x its term (at most a year), as the outcomes step counts;
- ``inflow`` (an offer answered with money moved in): the incremental money moved in — a lower bound, for a
  won-back customer also brings salary and transfers back, which the simulator's closed form does not add;
- ``reactivated`` (a dormant customer's own transaction, for an offer answered with money moved in): the
  incremental conversions — the transfer back is itself the customer's own transaction; exact but for the few
  who would have come back anyway in the same window (their share of the uplift, a few percent of it, is
  counted twice);
- any outcome of a strategy none of whose contacts changed a probability (an offer with no effect, like the
  birthday greeting): 0, exactly — treated and control customers live alike;
- anything else (activity, retention, AUM change of an effective offer): not given (None): the truth file
  speaks of conversions, and those outcomes follow from them only through the whole simulated behaviour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lifeloop.data.simulator import products as catalogue
from lifeloop.data.simulator.response import load_truth

if TYPE_CHECKING:
    import pyarrow as pa

FOLDER = "demo"
TRUTH = "truth.yaml"                  # demo/truth.yaml: the simulated bank's response truth; marks a demo workspace
CONTACTS = "contacts-truth"           # demo/contacts-truth/DAY.parquet: the simulator's truth of each contact
KEY = "simulator_truth"               # the key each strategy of the review document gets, in a demo workspace
MONEY_OUTCOMES = {"purchase_amount", "inflow", "fee_income", "aum_change"}


def truth_file(workspace: Path) -> Path:
    return Path(workspace) / FOLDER / TRUTH


def is_demo(workspace: Path) -> bool:
    """A demo workspace: ``lifeloop demo`` left its simulated bank's truth in ``demo/truth.yaml``."""
    return truth_file(workspace).is_file()


def record_contacts(workspace: Path, as_of: dt.date, effects: pa.Table) -> Path:
    """Keep the simulator's truth of the contacts planned on ``as_of`` (delivered the day after)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(workspace) / FOLDER / CONTACTS
    folder.mkdir(parents=True, exist_ok=True)
    keep = effects.select(["customer_id", "offer", "treated", "incremental_conversions", "incremental_money"])
    keep = keep.append_column("as_of", pa.array([as_of] * keep.num_rows, pa.date32()))
    path = folder / f"{as_of.isoformat()}.parquet"
    pq.write_table(keep, path)
    return path


def read_contacts(workspace: Path) -> pa.Table | None:
    """Every recorded contact's truth, or None when none was recorded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((Path(workspace) / FOLDER / CONTACTS).glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def fee_factor(product_id: str | None) -> float | None:
    """Fee income per RMB bought: fee rate x term (days, at most 365) / 365 — the outcomes step's formula."""
    if product_id not in catalogue.INDEX:
        return None
    spec = catalogue.CATALOGUE[catalogue.INDEX[product_id]]
    return spec.fee_rate * min(spec.term_days or 365, 365) / 365


def true_uplift(rows: pa.Table, contacts: pa.Table | None, outcome: str, *, window_days: int,
                kind: str, product_id: str | None) -> float | None:
    """Pure: the strategy's true uplift on ``outcome`` over its measured entries ``rows`` (see the module doc)."""
    if rows.num_rows == 0:
        return None
    by_pair: dict[tuple[str, str], list[tuple[dt.date, float, float]]] = {}
    if contacts is not None and contacts.num_rows:
        for c, o, d, conv, money in zip(*(contacts[k].to_pylist() for k in (
                "customer_id", "offer", "as_of", "incremental_conversions", "incremental_money")), strict=True):
            if conv or money:
                by_pair.setdefault((c, o), []).append((d, float(conv or 0.0), float(money or 0.0)))
    conv_sum: dict[str, list[float]] = {"treated": [], "control": []}
    money_sum: dict[str, list[float]] = {"treated": [], "control": []}
    for c, offer, entry, seen, arm in zip(*(rows[k].to_pylist() for k in (
            "customer_id", "offer", "entry_date", "observed_through", "arm")), strict=True):
        conv = money = 0.0
        for d, v, m in by_pair.get((c, offer), []):
            if d >= entry:
                share = min(max((seen - d).days, 0), window_days) / window_days
                conv, money = conv + v * share, money + m * share
        if arm in conv_sum:
            conv_sum[arm].append(conv)
            money_sum[arm].append(money)
    if not conv_sum["treated"] or not conv_sum["control"]:
        return None
    if not any(conv_sum["treated"]) and not any(conv_sum["control"]):
        return 0.0        # no contact changed anything: every outcome is truly unchanged

    def diff(d: Mapping[str, list[float]]) -> float:
        return float(np.mean(d["treated"]) - np.mean(d["control"]))

    if outcome == "purchased" and kind == "product":
        return diff(conv_sum)
    if outcome == "purchase_amount" and kind == "product":
        return diff(money_sum)
    if outcome == "fee_income" and kind == "product":
        factor = fee_factor(product_id)
        return None if factor is None else diff(money_sum) * factor
    if outcome == "inflow" and kind == "inflow":
        return diff(money_sum)
    if outcome == "reactivated" and kind == "inflow":
        return diff(conv_sum)
    return None


def add_truth(workspace: Path, doc: dict[str, Any], outcomes: pa.Table) -> None:
    """In a demo workspace, give every strategy of the review ``simulator_truth``: the outcome, the true uplift on
    the entries its review measured (None where the truth does not say) and the true offer. Elsewhere: nothing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not is_demo(workspace):
        return
    truth = load_truth(truth_file(workspace))
    contacts = read_contacts(workspace)
    for s in doc["strategies"]:
        rows = outcomes.filter(pc.equal(outcomes["strategy"], pa.scalar(s["strategy"])))
        if not doc.get("interim"):
            rows = rows.filter(rows["complete"])
        offer = _offer(truth, s.get("offer"))
        outcome = (s.get("headline") or {}).get("outcome") or s["primary_outcome"]
        uplift = None
        if offer is not None:
            name, o = offer
            rows = rows.set_column(rows.column_names.index("offer"), "offer", pa.array([name] * rows.num_rows,
                                                                                        pa.string()))
            uplift = true_uplift(rows, contacts, outcome, window_days=truth.window_days, kind=o.kind,
                                 product_id=o.product_id)
        kind = (s.get("headline") or {}).get("kind") or ("amount" if outcome in MONEY_OUTCOMES else "binary")
        s[KEY] = {"outcome": outcome, "kind": kind, "uplift": uplift, "offer": offer[0] if offer else None}


def _offer(truth: Any, code: str | None) -> tuple[str, Any] | None:
    """The truth's offer for a strategy's offer (an offer code, or the product id an offer sells)."""
    if code in truth.offers:
        return code, truth.offers[code]
    return next(((n, o) for n, o in truth.offers.items() if o.product_id == code), None)
