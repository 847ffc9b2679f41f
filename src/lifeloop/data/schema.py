"""The canonical model of a retail bank's data (see docs/data-model.md).

Every column is typed (DuckDB SQL types; money is DECIMAL(18,2)) and every personal column carries
its class under JR/T 0171-2020 (个人金融信息保护技术规范):

* ``C3`` authentication data (passwords, PINs, CVV, biometrics): never stored by Lifeloop;
* ``C2`` data that identifies a person or their financial situation (name, ID number, mobile,
  card number, birth date, balances, transactions): masked on display and in exports unless a
  role may see it;
* ``C1`` the bank's internal data about a person (branch, relationship manager, open date): plain.

A column with ``pii=None`` is not personal data.

Tables are of two kinds. *State* tables (branches, relationship managers, customers, products,
consent) are full extracts: the newest published batch on or before the as-of date is the truth.
*Fact* tables (holdings snapshots, transactions, events) are appended batch by batch: the truth as
of D is every batch on or before D, restricted to rows dated on or before D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PiiClass = Literal["C1", "C2", "C3"]
TableKind = Literal["state", "fact"]

PRODUCT_TYPES = ("demand_deposit", "time_deposit", "wealth", "fund", "insurance", "credit_card", "loan", "other")
# products whose balances count towards AUM (assets under management, 管理资产)
ASSET_PRODUCT_TYPES = ("demand_deposit", "time_deposit", "wealth", "fund", "insurance")
DIRECTIONS = ("credit", "debit")
TXN_TYPES = ("salary", "pension", "transfer", "cash", "card_payment", "interest", "fee", "loan_payment",
             "loan_disbursement", "purchase", "redemption", "insurance_premium", "household_payment",
             "maturity", "other")
TXN_CHANNELS = ("branch", "atm", "mobile", "online", "pos", "counter", "phone", "system", "other")
COUNTERPARTY_KINDS = ("employer", "individual", "merchant", "bank", "government", "internal", "other")
CONTACT_CHANNELS = ("sms", "push", "email", "call", "rm", "wechat", "branch")
CONSENT_PURPOSES = ("marketing", "service", "risk")
RISK_LEVELS = ("C1", "C2", "C3", "C4", "C5")          # customer risk assessment (投资者风险承受能力)
PRODUCT_RISK_LEVELS = ("R1", "R2", "R3", "R4", "R5")  # product risk rating (产品风险等级)


@dataclass(frozen=True)
class Column:
    """One typed column of a canonical table."""

    name: str
    type: str
    description: str
    required: bool = False          # NULL is forbidden
    pii: PiiClass | None = None
    nonnegative: bool = False       # negative values are forbidden
    allowed: tuple[str, ...] | None = None  # closed set of codes


@dataclass(frozen=True)
class ForeignKey:
    """``column`` must match ``ref_table.ref_column`` (referential integrity)."""

    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class Table:
    """A canonical table: columns, key, references, and which column dates a row."""

    name: str
    kind: TableKind
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    date_column: str | None = None  # the column that must be <= as-of (fact tables)
    required_in_ingest: bool = True

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


C = Column
BRANCHES = Table(
    "branches", "state", "Branches (网点) of the bank.",
    (
        C("branch_id", "VARCHAR", "Branch code.", required=True),
        C("name", "VARCHAR", "Branch name.", required=True),
        C("city", "VARCHAR", "City of the branch."),
        C("region", "VARCHAR", "Region or province."),
    ),
    ("branch_id",),
)

RELATIONSHIP_MANAGERS = Table(
    "relationship_managers", "state", "Relationship managers (客户经理) and their branch.",
    (
        C("rm_id", "VARCHAR", "Relationship-manager code.", required=True),
        C("name", "VARCHAR", "Employee name (the bank's staff, not a customer).", required=True),
        C("branch_id", "VARCHAR", "Branch the RM works at.", required=True),
        C("daily_capacity", "INTEGER", "Tasks the RM can handle per day.", nonnegative=True),
    ),
    ("rm_id",),
    (ForeignKey("branch_id", "branches", "branch_id"),),
)

CUSTOMERS = Table(
    "customers", "state", "Retail customers (个人客户) and prospects.",
    (
        C("customer_id", "VARCHAR", "Customer number (客户号).", required=True, pii="C1"),
        C("name", "VARCHAR", "Full name.", pii="C2"),
        C("gender", "VARCHAR", "M, F or U (unknown).", allowed=("M", "F", "U")),
        C("birth_date", "DATE", "Date of birth.", pii="C2"),
        C("id_number", "VARCHAR", "National ID number (身份证号).", pii="C2"),
        C("mobile", "VARCHAR", "Mobile phone number.", pii="C2"),
        C("email", "VARCHAR", "E-mail address.", pii="C2"),
        C("city", "VARCHAR", "City of residence.", pii="C1"),
        C("occupation", "VARCHAR", "Occupation.", pii="C1"),
        C("branch_id", "VARCHAR", "Home branch.", required=True, pii="C1"),
        C("rm_id", "VARCHAR", "Assigned relationship manager, if any.", pii="C1"),
        C("open_date", "DATE", "Date the customer relationship began (开户日).", pii="C1"),
        C("is_prospect", "BOOLEAN", "A lead with no product yet (潜在客户)."),
        C("risk_level", "VARCHAR", "Risk-assessment level C1..C5 (风险测评).", pii="C1", allowed=RISK_LEVELS),
        C("risk_assessed_on", "DATE", "Date of the risk assessment.", pii="C1"),
        C("risk_expires_on", "DATE", "Date the risk assessment expires.", pii="C1"),
    ),
    ("customer_id",),
    (ForeignKey("branch_id", "branches", "branch_id"), ForeignKey("rm_id", "relationship_managers", "rm_id")),
)

PRODUCTS = Table(
    "products", "state", "Product catalogue (产品目录).",
    (
        C("product_id", "VARCHAR", "Product code.", required=True),
        C("name", "VARCHAR", "Product name.", required=True),
        C("product_type", "VARCHAR", "Product type.", required=True, allowed=PRODUCT_TYPES),
        C("term_days", "INTEGER", "Term in days for fixed-term products.", nonnegative=True),
        C("fee_rate", "DECIMAL(9,6)", "Annual fee / margin rate earned by the bank (中收费率).", nonnegative=True),
        C("risk_level", "VARCHAR", "Product risk rating R1..R5.", allowed=PRODUCT_RISK_LEVELS),
        C("currency", "VARCHAR", "ISO currency code."),
    ),
    ("product_id",),
)

HOLDINGS = Table(
    "holdings", "fact", "Accounts and holdings: balance snapshots per account (customer x product) and date.",
    (
        C("account_id", "VARCHAR", "Account / holding number.", required=True, pii="C2"),
        C("customer_id", "VARCHAR", "Owner.", required=True, pii="C1"),
        C("product_id", "VARCHAR", "Product held.", required=True),
        C("snapshot_date", "DATE", "Date of the balance snapshot.", required=True),
        C("balance", "DECIMAL(18,2)", "Balance on the snapshot date (outstanding amount for loans and cards).",
          required=True, pii="C2", nonnegative=True),
        C("open_date", "DATE", "Date the account was opened.", pii="C1"),
        C("maturity_date", "DATE", "Maturity date for fixed-term products.", pii="C1"),
        C("status", "VARCHAR", "open or closed.", required=True, allowed=("open", "closed")),
    ),
    ("account_id", "snapshot_date"),
    (ForeignKey("customer_id", "customers", "customer_id"), ForeignKey("product_id", "products", "product_id")),
    date_column="snapshot_date",
)

TRANSACTIONS = Table(
    "transactions", "fact", "Transactions (交易流水).",
    (
        C("transaction_id", "VARCHAR", "Transaction number.", required=True),
        C("account_id", "VARCHAR", "Account.", required=True, pii="C2"),
        C("customer_id", "VARCHAR", "Customer.", required=True, pii="C1"),
        C("txn_date", "DATE", "Booking date.", required=True),
        C("amount", "DECIMAL(18,2)", "Amount, always positive; see direction.", required=True, pii="C2",
          nonnegative=True),
        C("direction", "VARCHAR", "credit (money in) or debit (money out).", required=True, allowed=DIRECTIONS),
        C("txn_type", "VARCHAR", "What the transaction is.", required=True, allowed=TXN_TYPES),
        C("channel", "VARCHAR", "Where it was made.", allowed=TXN_CHANNELS),
        C("counterparty_kind", "VARCHAR", "Who is on the other side.", allowed=COUNTERPARTY_KINDS),
        C("customer_initiated", "BOOLEAN", "Made by the customer (not interest, fees, standing system postings).",
          required=True),
        C("balance_after", "DECIMAL(18,2)", "Account balance after the transaction.", pii="C2"),
    ),
    ("transaction_id",),
    (ForeignKey("customer_id", "customers", "customer_id"),),
    date_column="txn_date",
)

EVENTS = Table(
    "events", "fact", "Digital and business events (app logins, page views, complaints, leads).",
    (
        C("event_id", "VARCHAR", "Event id.", required=True),
        C("customer_id", "VARCHAR", "Customer.", required=True, pii="C1"),
        C("event_date", "DATE", "Date of the event.", required=True),
        C("event_time", "TIMESTAMP", "Time of the event, if known."),
        C("event_type", "VARCHAR", "app_login, page_view, complaint, lead, ...", required=True),
        C("channel", "VARCHAR", "mobile, online, branch, call_centre, ..."),
        C("detail", "VARCHAR", "Free detail (page, product, reason); never personal data.", pii="C1"),
    ),
    ("event_id",),
    (ForeignKey("customer_id", "customers", "customer_id"),),
    date_column="event_date",
    required_in_ingest=False,
)

CONSENT = Table(
    "consent", "state", "Consent per customer, purpose and channel (授权).",
    (
        C("customer_id", "VARCHAR", "Customer.", required=True, pii="C1"),
        C("purpose", "VARCHAR", "marketing, service or risk.", required=True, allowed=CONSENT_PURPOSES),
        C("channel", "VARCHAR", "Contact channel.", required=True, allowed=CONTACT_CHANNELS),
        C("granted", "BOOLEAN", "Consent given.", required=True),
        C("updated_on", "DATE", "When the customer last changed it.", pii="C1"),
    ),
    ("customer_id", "purpose", "channel"),
    (ForeignKey("customer_id", "customers", "customer_id"),),
    required_in_ingest=False,
)

TABLES: dict[str, Table] = {t.name: t for t in (BRANCHES, RELATIONSHIP_MANAGERS, CUSTOMERS, PRODUCTS,
                                                  HOLDINGS, TRANSACTIONS, EVENTS, CONSENT)}


def arrow_schema(table_name: str):
    """The pyarrow schema of a canonical table (lazy import of pyarrow)."""
    import pyarrow as pa

    return pa.schema([pa.field(c.name, _arrow_type(c.type), nullable=not c.required)
                      for c in TABLES[table_name].columns])


def _arrow_type(sql_type: str):
    import pyarrow as pa

    t = sql_type.upper()
    if t.startswith("DECIMAL"):
        p, s = t[t.index("(") + 1:-1].split(",")
        return pa.decimal128(int(p), int(s))
    return {
        "VARCHAR": pa.string(), "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us"), "BOOLEAN": pa.bool_(),
        "INTEGER": pa.int32(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
    }[t]
