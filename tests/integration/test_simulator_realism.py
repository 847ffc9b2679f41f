"""The simulated bank behaves like a retail bank: the realism targets of docs/simulator.md.

One bank of 5,000 customers over 400 days (2024-01-01 .. 2025-02-03) is simulated once per module;
every test reads its canonical extracts (as Lifeloop would) or its hidden truth.
"""

import datetime as dt

import duckdb
import pyarrow.parquet as pq
import pytest

from lifeloop.data.schema import TABLES, arrow_schema
from lifeloop.data.simulator import simulate

ASSETS = "('demand_deposit','time_deposit','wealth','fund','insurance')"


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    out = tmp_path_factory.mktemp("bank")
    result = simulate(out, customers=5000, days=400, seed=5)
    con = duckdb.connect()
    for name in TABLES:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{out / (name + '.parquet')}')")
    for name in ("customers", "states", "stage_changes", "conversions"):
        con.execute(f"CREATE VIEW truth_{name} AS SELECT * FROM read_parquet('{out / '_truth' / (name + '.parquet')}')")
    return result, con


def one(con, sql, *params):
    return con.execute(sql, list(params)).fetchone()


def test_every_extract_has_exactly_the_canonical_arrow_schema(bank):
    result, _ = bank
    for name in TABLES:
        schema = pq.read_schema(result.out / f"{name}.parquet")
        assert schema.remove_metadata() == arrow_schema(name), name


def test_the_result_reports_the_last_simulated_day_as_the_as_of_date(bank):
    result, con = bank
    assert result.as_of == dt.date(2025, 2, 3)
    assert (one(con, "SELECT (SELECT max(txn_date) FROM transactions), (SELECT max(snapshot_date) FROM holdings)")
            == (result.as_of,) * 2)


def test_ids_are_unique_and_every_fact_names_a_known_customer(bank):
    _, con = bank
    assert one(con, "SELECT count(*) - count(DISTINCT transaction_id) FROM transactions")[0] == 0
    assert one(con, "SELECT count(*) - count(DISTINCT event_id) FROM events")[0] == 0
    assert one(con, "SELECT count(*) FROM (SELECT account_id, snapshot_date FROM holdings GROUP BY ALL "
                    "HAVING count(*) > 1)")[0] == 0
    for t in ("transactions", "holdings", "events", "consent"):
        assert one(con,
                   f"SELECT count(*) FROM {t} WHERE customer_id NOT IN (SELECT customer_id FROM customers)")[0] == 0
    # an account belongs to one customer and one product
    assert one(con, "SELECT count(*) FROM (SELECT account_id FROM holdings GROUP BY 1 "
                    "HAVING count(DISTINCT customer_id) > 1 OR count(DISTINCT product_id) > 1)")[0] == 0


def test_balance_after_agrees_with_the_as_of_snapshot_of_every_cash_account(bank):
    result, con = bank
    mismatches = one(con, """
        WITH last AS (SELECT account_id, arg_max(balance_after, transaction_id) AS after FROM transactions GROUP BY 1)
        SELECT count(*), count(*) FILTER (WHERE h.balance <> last.after)
        FROM holdings h JOIN last USING (account_id)
        WHERE h.snapshot_date = ? AND h.product_id = 'DD01'""", result.as_of)
    assert mismatches[0] > 3000 and mismatches[1] == 0


def aum_by_customer(con, as_of):
    return f"""SELECT customer_id, sum(balance)::DOUBLE AS aum FROM holdings JOIN products USING (product_id)
               WHERE snapshot_date = DATE '{as_of}' AND status = 'open' AND product_type IN {ASSETS} GROUP BY 1"""


def test_aum_is_heavy_tailed_most_customers_mass_a_few_percent_wealth_and_well_under_one_percent_private(bank):
    result, con = bank
    n, mass, potential, wealth, private = one(con, f"""
        SELECT count(*), avg((aum < 50000)::INT), avg((aum >= 50000 AND aum < 500000)::INT),
               avg((aum >= 500000 AND aum < 6000000)::INT), avg((aum >= 6000000)::INT)
        FROM ({aum_by_customer(con, result.as_of)})""")
    assert n > 3500
    assert 0.80 <= mass <= 0.92
    assert 0.04 <= potential <= 0.15
    assert 0.01 <= wealth <= 0.06
    assert private < 0.01


def test_the_top_one_percent_hold_more_than_a_quarter_of_aum(bank):
    result, con = bank
    share = one(con, f"""
        WITH r AS (SELECT aum, row_number() OVER (ORDER BY aum DESC) AS rn, count(*) OVER () AS n
                   FROM ({aum_by_customer(con, result.as_of)}))
        SELECT sum(aum) FILTER (WHERE rn <= n / 100) / sum(aum) FROM r""")[0]
    assert share > 0.25


def test_a_sizeable_share_of_customers_has_been_dormant_for_180_days(bank):
    result, con = bank
    # customers with an open account, known for 180+ days, and no customer-initiated transaction in 180 days
    share = one(con, """
        WITH live AS (SELECT DISTINCT customer_id FROM holdings WHERE snapshot_date = $1 AND status = 'open'),
             known AS (SELECT customer_id FROM customers WHERE open_date <= $1 - 180 AND customer_id IN (FROM live)),
             active AS (SELECT DISTINCT customer_id FROM transactions WHERE customer_initiated AND txn_date > $1 - 180)
        SELECT avg((customer_id NOT IN (FROM active))::INT) FROM known""", result.as_of)[0]
    assert 0.15 <= share <= 0.30


def test_payroll_customers_get_one_salary_a_month_on_their_employers_day(bank):
    _, con = bank
    share = one(con, "SELECT avg(payroll::INT) FROM truth_customers")[0]
    assert 0.20 <= share <= 0.35
    per_month = con.execute("""SELECT n, count(*) FROM (SELECT customer_id, date_trunc('month', txn_date), count(*) AS n
                               FROM transactions WHERE txn_type = 'salary' GROUP BY ALL) GROUP BY 1""").fetchall()
    assert dict(per_month).keys() == {1}
    # the salary date is the employer's day, or the working day before it (weekends and holidays)
    late_or_far = one(con, """
        SELECT count(*) FILTER (WHERE day(t.txn_date) > c.salary_day OR c.salary_day - day(t.txn_date) > 7), count(*)
        FROM transactions t JOIN truth_customers c USING (customer_id)
        WHERE t.txn_type = 'salary' AND c.salary_day > 0 AND t.txn_date > DATE '2024-01-10'
          AND NOT (month(t.txn_date) IN (5, 10) AND day(t.txn_date) <= 10)""")
    assert late_or_far[1] > 1000 and late_or_far[0] == 0
    # salaries land on working days only
    assert one(con,
               "SELECT count(*) FROM transactions WHERE txn_type = 'salary' AND dayofweek(txn_date) IN (0, 6)")[0] == 0


def test_spending_runs_up_before_spring_festival_and_lulls_during_it(bank):
    _, con = bank
    rows = dict(con.execute("""
        SELECT CASE WHEN txn_date BETWEEN DATE '2024-01-22' AND DATE '2024-02-07' THEN 'run-up'
                    WHEN txn_date BETWEEN DATE '2024-02-10' AND DATE '2024-02-15' THEN 'holiday'
                    WHEN txn_date BETWEEN DATE '2024-03-04' AND DATE '2024-03-29' THEN 'march' END AS period,
               count(*) / count(DISTINCT txn_date) AS per_day
        FROM transactions WHERE txn_type = 'card_payment' GROUP BY 1""").fetchall())
    assert rows["run-up"] > 1.25 * rows["march"]
    assert rows["holiday"] < 0.7 * rows["march"]
    # cash for 红包: ATM withdrawals per day more than double in the run-up
    cash = dict(con.execute("""
        SELECT txn_date BETWEEN DATE '2024-01-22' AND DATE '2024-02-07', count(*) / count(DISTINCT txn_date)
        FROM transactions WHERE txn_type = 'cash' AND (txn_date BETWEEN DATE '2024-01-22' AND DATE '2024-02-07'
                                                     OR txn_date BETWEEN DATE '2024-03-04' AND DATE '2024-03-29')
        GROUP BY 1""").fetchall())
    assert cash[True] > 2 * cash[False]


def test_new_customers_arrive_during_the_simulation_and_their_honeymoon_activity_decays(bank):
    result, con = bank
    arrived = one(con, "SELECT count(*) FROM customers WHERE open_date >= DATE '2024-01-01'")[0]
    assert arrived > 200
    first, third = one(con, """
        WITH nc AS (SELECT customer_id, open_date FROM customers
                    WHERE open_date >= DATE '2024-01-01' AND open_date <= $1 - 90 AND NOT is_prospect)
        SELECT count(*) FILTER (WHERE txn_date - open_date < 30), count(*) FILTER (WHERE txn_date - open_date >= 60)
        FROM transactions JOIN nc USING (customer_id) WHERE customer_initiated AND txn_date - open_date < 90""",
                        result.as_of)
    assert first > 1.5 * third


def test_churned_customers_moved_their_money_out_and_closed_every_account(bank):
    result, con = bank
    churned = [r[0] for r in con.execute("SELECT customer_id FROM truth_customers WHERE stage = 'churned'").fetchall()]
    assert len(churned) > 100
    still_open = one(con,
                     "SELECT count(*) FROM holdings WHERE snapshot_date = ? AND status = 'open' AND customer_id IN "
                          "(SELECT customer_id FROM truth_customers WHERE stage = 'churned')", result.as_of)[0]
    assert still_open == 0
    # before churning, money flows out to other banks: outflows of leavers exceed everyone else's, per customer
    leavers, others = one(con, """
        SELECT sum(amount) FILTER (WHERE customer_id IN (SELECT customer_id FROM truth_customers WHERE stage='churned'))
                 / (SELECT count(*) FROM truth_customers WHERE stage = 'churned'),
               sum(amount) FILTER (WHERE customer_id IN (SELECT customer_id FROM truth_customers WHERE stage='mature'))
                 / (SELECT count(*) FROM truth_customers WHERE stage = 'mature')
        FROM transactions WHERE counterparty_kind = 'bank' AND direction = 'debit'""")
    assert leavers > 2 * others


def test_stage_changes_include_dormancy_churn_and_reactivation(bank):
    _, con = bank
    moves = {(a, b) for a, b in con.execute("SELECT DISTINCT before, after FROM truth_stage_changes").fetchall()}
    for move in [("honeymoon", "growing"), ("mature", "declining"), ("declining", "dormant"),
                 ("declining", "churned"), ("dormant", "won_back")]:
        assert move in moves


def test_maturing_products_are_rolled_over_paid_out_or_left_to_sit(bank):
    _, con = bank
    paid = one(con, "SELECT count(*) FROM transactions WHERE txn_type = 'maturity'")[0]
    rolled = one(con, """SELECT count(*) FROM transactions t JOIN holdings h USING (account_id)
                         WHERE t.txn_type = 'interest' AND (h.product_id LIKE 'TD%' OR h.product_id LIKE 'WM%')""")[0]
    assert paid > 100 and rolled > 100
    closed_at_maturity = one(con, """SELECT count(*) FROM holdings WHERE status = 'closed' """
                                  """AND snapshot_date = maturity_date""")[0]
    assert closed_at_maturity > 100


def test_month_end_snapshots_cover_every_open_account(bank):
    _, con = bank
    gaps = one(con, """
        WITH ends AS (SELECT DISTINCT snapshot_date AS d FROM holdings WHERE snapshot_date = last_day(snapshot_date)),
             alive AS (SELECT DISTINCT account_id, open_date, (SELECT min(snapshot_date) FROM holdings h2
                        WHERE h2.account_id = h.account_id AND status = 'closed') AS closed FROM holdings h)
        SELECT count(*) FROM alive, ends
        WHERE open_date <= d AND (closed IS NULL OR closed > d)
          AND NOT EXISTS (SELECT 1 FROM holdings x WHERE x.account_id = alive.account_id AND x.snapshot_date = d)""")[0]
    assert gaps == 0


def test_some_long_silent_customers_come_back(bank):
    _, con = bank
    # a customer-initiated transaction after 180+ days without one: reactivation, as Lifeloop would see it
    back = one(con, """
        WITH t AS (SELECT customer_id, txn_date, lag(txn_date) OVER (PARTITION BY customer_id ORDER BY txn_date) AS prev
                   FROM transactions WHERE customer_initiated)
        SELECT count(DISTINCT customer_id) FROM t WHERE txn_date - prev >= 180""")[0]
    customers = one(con, "SELECT count(*) FROM customers")[0]
    assert 0.002 * customers < back < 0.05 * customers
