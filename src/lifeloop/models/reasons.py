"""Reason codes (原因码): the features that push a customer's score up most, in a banker's words.

The codes come from a model's exact contributions (see :meth:`lifeloop.models.contract.Model.contributions`):
the top ``k`` features with a positive contribution, largest first. Words come from config/models.yaml's
``reasons`` table (``aum_change_pct_90d: {zh: 资产90天变化, en: AUM change over 90 days}``) with the bin's
range appended; a feature missing from the table falls back to its own name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifeloop.config.shelf import ReasonWords

if TYPE_CHECKING:
    import numpy as np

# the default words for the churn warning's features (a bank overrides them in config/models.yaml)
WORDS: dict[str, ReasonWords] = {
    "days_since_last_txn": ReasonWords(zh="距上次交易天数", en="days since the last transaction"),
    "frequency_30d": ReasonWords(zh="近30天交易笔数", en="transactions in 30 days"),
    "frequency_90d": ReasonWords(zh="近90天交易笔数", en="transactions in 90 days"),
    "monetary_90d": ReasonWords(zh="近90天交易金额", en="amount transacted in 90 days"),
    "aum": ReasonWords(zh="资产余额", en="assets under management"),
    "aum_change_pct_90d": ReasonWords(zh="资产90天变化", en="AUM change over 90 days"),
    "net_flow_30d": ReasonWords(zh="近30天资金净流入", en="net inflow in 30 days"),
    "salary_months_3m": ReasonWords(zh="近3个月代发工资月数", en="months with salary paid in, of 3"),
    "payroll_flag": ReasonWords(zh="代发工资客户", en="salary paid in here"),
    "products_held": ReasonWords(zh="持有产品数", en="products held"),
    "product_lines": ReasonWords(zh="持有产品线数", en="product lines held"),
    "app_logins_30d": ReasonWords(zh="近30天手机银行登录次数", en="app logins in 30 days"),
    "days_since_last_login": ReasonWords(zh="距上次登录天数", en="days since the last app login"),
    "tenure_days": ReasonWords(zh="开户天数", en="days since the relationship began"),
    "age": ReasonWords(zh="年龄", en="age"),
}


def top_reasons(contributions: np.ndarray, k: int = 3) -> list[list[int]]:
    """Per customer, the indexes of up to ``k`` features with the largest positive contributions."""
    import numpy as np

    order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    return [[int(j) for j in row if contributions[i, j] > 0] for i, row in enumerate(order)]


def words(feature: str, bin_text: str, table: dict[str, ReasonWords]) -> tuple[str, str]:
    """(Chinese, English) words for a feature's reason code with its bin's range."""
    w = table.get(feature) or WORDS.get(feature) or ReasonWords(zh=feature, en=feature)
    return f"{w.zh}: {bin_text}", f"{w.en}: {bin_text}"
