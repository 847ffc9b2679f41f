"""The simulated bank's product catalogue (产品目录): deposits, 理财, funds, insurance, cards, loans."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ProductSpec:
    """One product: type, term, the bank's fee/margin rate (中收), risk rating and customer yield."""

    product_id: str
    name: str
    product_type: str
    term_days: int | None
    fee_rate: float
    risk_level: str | None
    yield_rate: float = 0.0     # annual return paid to the customer at maturity / market drift
    volatility: float = 0.0     # daily volatility of the unit value (funds)


P = ProductSpec
CATALOGUE: tuple[ProductSpec, ...] = (
    P("DD01", "活期储蓄 Demand savings (debit card)", "demand_deposit", None, 0.0150, "R1", 0.0020),
    P("TD3M", "三个月定期 3-month time deposit", "time_deposit", 90, 0.0100, "R1", 0.0125),
    P("TD6M", "六个月定期 6-month time deposit", "time_deposit", 180, 0.0100, "R1", 0.0145),
    P("TD1Y", "一年定期 1-year time deposit", "time_deposit", 365, 0.0100, "R1", 0.0165),
    P("TD2Y", "两年定期 2-year time deposit", "time_deposit", 730, 0.0100, "R1", 0.0185),
    P("TD3Y", "三年定期 3-year time deposit", "time_deposit", 1095, 0.0100, "R1", 0.0210),
    P("WM030", "稳享30天理财 30-day wealth product", "wealth", 30, 0.0040, "R2", 0.0230),
    P("WM090", "稳享90天理财 90-day wealth product", "wealth", 90, 0.0050, "R2", 0.0260),
    P("WM180", "优选180天理财 180-day wealth product", "wealth", 180, 0.0060, "R3", 0.0290),
    P("WM365", "优选365天理财 365-day wealth product", "wealth", 365, 0.0070, "R3", 0.0320),
    P("FD_MM", "货币基金 Money-market fund", "fund", None, 0.0030, "R1", 0.0180, 0.0001),
    P("FD_BOND", "债券基金 Bond fund", "fund", None, 0.0060, "R2", 0.0300, 0.0012),
    P("FD_EQ", "股票基金 Equity fund", "fund", None, 0.0150, "R4", 0.0500, 0.0120),
    P("INS_ANN", "年金保险 Annuity insurance", "insurance", None, 0.0200, "R2", 0.0250),
    P("INS_HEALTH", "健康保险 Health insurance", "insurance", None, 0.0300, "R1", 0.0),
    P("CC_STD", "标准信用卡 Standard credit card", "credit_card", None, 0.0150, None),
    P("CC_PLAT", "白金信用卡 Platinum credit card", "credit_card", None, 0.0180, None),
    P("LN_CONS", "个人消费贷 Consumer loan", "loan", 365, 0.0450, None),
)
PRODUCT_IDS: tuple[str, ...] = tuple(p.product_id for p in CATALOGUE)
INDEX: dict[str, int] = {p: i for i, p in enumerate(PRODUCT_IDS)}
TYPES: np.ndarray = np.array([p.product_type for p in CATALOGUE])
TERM: np.ndarray = np.array([p.term_days or 0 for p in CATALOGUE], dtype=np.int32)
YIELD: np.ndarray = np.array([p.yield_rate for p in CATALOGUE])
VOLATILITY: np.ndarray = np.array([p.volatility for p in CATALOGUE])
IS_ASSET: np.ndarray = np.isin(TYPES, ("demand_deposit", "time_deposit", "wealth", "fund", "insurance"))
IS_LIABILITY: np.ndarray = np.isin(TYPES, ("credit_card", "loan"))
IS_FIXED_TERM: np.ndarray = np.isin(TYPES, ("time_deposit", "wealth"))
IS_CARD: np.ndarray = np.isin(TYPES, ("demand_deposit", "credit_card"))
DEMAND = INDEX["DD01"]

# what a customer buys for each product family at the start, by family (weights within a family)
FAMILY: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "time_deposit": (("TD3M", "TD6M", "TD1Y", "TD2Y", "TD3Y"), (0.15, 0.2, 0.35, 0.15, 0.15)),
    "wealth": (("WM030", "WM090", "WM180", "WM365"), (0.2, 0.35, 0.25, 0.2)),
    "fund": (("FD_MM", "FD_BOND", "FD_EQ"), (0.45, 0.3, 0.25)),
    "insurance": (("INS_ANN", "INS_HEALTH"), (0.5, 0.5)),
    "credit_card": (("CC_STD", "CC_PLAT"), (0.8, 0.2)),
    "loan": (("LN_CONS",), (1.0,)),
}


def catalogue_rows() -> list[dict]:
    """The catalogue as rows of the canonical ``products`` table."""
    return [{"product_id": p.product_id, "name": p.name, "product_type": p.product_type,
             "term_days": p.term_days, "fee_rate": p.fee_rate, "risk_level": p.risk_level, "currency": "CNY"}
            for p in CATALOGUE]
