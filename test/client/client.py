#!/usr/bin/python3
"""
test/client/client.py: credit as an application sees it, through a real
driver (Debian's python3-psycopg2, libpq underneath).

An application schema of its own (app.orders, app.edi_orders), accounts
opened and the tables attached by an administrator (the superuser the
environment names), then everything else as the application: a login role
with INSERT/SELECT on its own tables and no privilege at all on schema
credit.  It places orders that fit, catches the over-limit SQLSTATE and
reads its message, detail, hint, schema and table through the driver,
checks the transaction is rolled back and the exposure unchanged, carries on
after a savepoint, sends a COPY, races two connections for one account
(threads, with a timeout), writes into a hold table and listens for the
notification, and reads the account and reporting views as a read-only BI
login.

Connection: libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD); the
database is CLIENT_DB (default credit_client), created by run.sh.  Prints
"ok N - ..." / "not ok N - ..." lines and a plan; exits 1 on any failure.
"""
import os
import sys
import threading
import time
import traceback
from decimal import Decimal

import psycopg2
import psycopg2.errors
import psycopg2.extensions

DB = os.environ.get("CLIENT_DB", "credit_client")
APP_ROLE = "credit_client_app"
APP_PASSWORD = "app-secret-1"
BI_ROLE = "credit_client_bi"
BI_PASSWORD = "bi-secret-1"

n = 0
failures = 0


def ok(cond, text, diag=None):
    """One TAP line; diag (shown on failure) says what was seen."""
    global n, failures
    n += 1
    if cond:
        print(f"ok {n} - {text}")
    else:
        failures += 1
        print(f"not ok {n} - {text}")
        if diag is not None:
            for line in str(diag).splitlines():
                print(f"#   {line}")
    sys.stdout.flush()
    return cond


def eq(got, want, text, extra=None):
    d = f"got:  {got!r}\nwant: {want!r}"
    if extra is not None:
        d += f"\n{extra!r}"
    return ok(got == want, text, d)


def skip(text, reason):
    global n
    n += 1
    print(f"ok {n} - {text} # SKIP {reason}")


def section(name, fn):
    """Run a group of checks; an unexpected exception is one failure."""
    print(f"# {name}")
    try:
        fn()
    except Exception:  # noqa: BLE001 - reported as a failure
        ok(False, f"{name}: no unexpected error", traceback.format_exc())


def connect(user=None, password=None, autocommit=False, app_name="credit-client"):
    kw = {"dbname": DB, "application_name": app_name}
    if user is not None:
        kw["user"] = user
        kw["password"] = password
    conn = psycopg2.connect(**kw)
    conn.autocommit = autocommit
    return conn


def one(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
        return None if row is None else (row[0] if len(row) == 1 else row)


def rows(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


# --------------------------------------------------------------------------
# set-up, as the administrator
# --------------------------------------------------------------------------
admin = connect(autocommit=True, app_name="credit-client-admin")


def exposure(key):
    return one(admin, "SELECT exposure FROM credit.accounts WHERE customer_key = %s", (key,))


def role_exists(name):
    return one(admin, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (name,)) == 1


def setup():
    with admin.cursor() as cur:
        cur.execute("SET client_min_messages = warning")
        cur.execute("CREATE EXTENSION credit")
        cur.execute("CREATE SCHEMA app")
        cur.execute("""
            CREATE TABLE app.orders (
                order_id    integer PRIMARY KEY,
                customer_id bigint NOT NULL,
                amount      numeric(12,2) NOT NULL,
                status      text NOT NULL DEFAULT 'open'
                            CHECK (status IN ('open', 'confirmed', 'shipped', 'cancelled')),
                placed_at   timestamptz NOT NULL DEFAULT now()
            )""")
        cur.execute("""
            CREATE TABLE app.edi_orders (
                order_id    integer PRIMARY KEY,
                customer_id bigint NOT NULL,
                amount      numeric(12,2) NOT NULL,
                status      text NOT NULL DEFAULT 'open'
            )""")
        # 501: reject tests; 502: the race; 503: the hold table; 504: COPY
        cur.execute("""
            INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, owner)
            VALUES ('501', 'Acme Trading', 10000, 'alice'),
                   ('502', 'Beta Ltd', 5000, 'bob'),
                   ('503', 'Gamma EDI', 3000, 'chen'),
                   ('504', 'Delta Bulk', 2000, 'dana')""")
        cur.execute("""
            SELECT credit.attach_orders('app.orders', customer_column => 'customer_id',
                                        amount_column => 'amount', status_column => 'status',
                                        open_statuses => '{open,confirmed}')""")
        cur.execute("""
            SELECT credit.attach_orders('app.edi_orders', 'customer_id', 'amount', 'status',
                                        '{open}', over_limit => 'hold', key_column => 'order_id',
                                        held_status => 'credit_hold',
                                        rejected_status => 'cancelled')""")
        # the application: a login role with INSERT/SELECT on its own tables only
        cur.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
        cur.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD %s", (APP_PASSWORD,))
        cur.execute(f"GRANT USAGE ON SCHEMA app TO {APP_ROLE}")
        cur.execute(f"GRANT SELECT, INSERT ON app.orders, app.edi_orders TO {APP_ROLE}")
        cur.execute(f"GRANT CONNECT ON DATABASE {DB} TO {APP_ROLE}")
        # the BI reader: credit_bi when sql/roles.sql provides it
        cur.execute(f"DROP ROLE IF EXISTS {BI_ROLE}")
        cur.execute(f"CREATE ROLE {BI_ROLE} LOGIN PASSWORD %s", (BI_PASSWORD,))
        if role_exists("credit_bi"):
            cur.execute(f"GRANT credit_bi TO {BI_ROLE}")
            print("# BI reader is a member of credit_bi")
        else:
            cur.execute(f"GRANT USAGE ON SCHEMA credit TO {BI_ROLE}")
            cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA credit TO {BI_ROLE}")
            print("# role credit_bi does not exist (sql/roles.sql not there yet): "
                  "BI reader granted SELECT on schema credit directly")
    eq(rows(admin, "SELECT customer_key, exposure FROM credit.accounts ORDER BY 1"),
       [("501", Decimal("0")), ("502", Decimal("0")), ("503", Decimal("0")),
        ("504", Decimal("0"))], "set-up: four accounts, no exposure yet")


# --------------------------------------------------------------------------
# the application's role
# --------------------------------------------------------------------------
def privileges():
    app = connect(APP_ROLE, APP_PASSWORD, autocommit=True)
    eq(one(app, "SELECT current_user"), APP_ROLE, "application connects as its own login role")
    eq(one(app, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"), False,
       "application role is not a superuser")
    eq(one(app, "SELECT has_schema_privilege('credit', 'USAGE')"), False,
       "application role has no USAGE on schema credit")
    try:
        one(app, "SELECT exposure FROM credit.accounts")
        ok(False, "application cannot read credit.accounts", "no error")
    except psycopg2.errors.InsufficientPrivilege as e:
        eq(e.pgcode, "42501", "application cannot read credit.accounts (42501)")
    app.close()


def orders_that_fit():
    app = connect(APP_ROLE, APP_PASSWORD)
    with app.cursor() as cur:
        cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (%s, %s, %s)",
                    (1, 501, Decimal("2500.00")))
        cur.executemany(
            "INSERT INTO app.orders (order_id, customer_id, amount, status) VALUES (%s, %s, %s, %s)",
            [(2, 501, Decimal("3000.00"), "confirmed"),
             (3, 501, Decimal("499.50"), "open"),
             (4, 501, Decimal("700.00"), "shipped")])   # not open: does not count
    app.commit()
    eq(exposure("501"), Decimal("5999.50"),
       "orders that fit commit: exposure 2500 + 3000 + 499.50 (the shipped one not counted)")
    eq(one(admin, "SELECT status FROM credit.accounts WHERE customer_key = '501'"), "ok",
       "account 501 status ok at 60 % of its limit")
    # the role has INSERT/SELECT only: an UPDATE is refused by PostgreSQL
    with app.cursor() as cur:
        try:
            cur.execute("UPDATE app.orders SET status = 'shipped' WHERE order_id = 2")
            ok(False, "application role has no UPDATE privilege", "UPDATE passed")
        except psycopg2.errors.InsufficientPrivilege as e:
            eq(e.pgcode, "42501", "application role has no UPDATE privilege (42501)")
    app.rollback()
    app.close()


def over_limit():
    app = connect(APP_ROLE, APP_PASSWORD)
    before = exposure("501")
    err = None
    with app.cursor() as cur:
        cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (10, 501, 100)")
        try:
            cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (%s, %s, %s)",
                        (11, 501, Decimal("3900.51")))
        except psycopg2.Error as e:
            err = e
    ok(err is not None, "an order past the available credit raises an error in the driver")
    if err is None:
        app.rollback()
        app.close()
        return
    ok(isinstance(err, psycopg2.DatabaseError), "it is a psycopg2.DatabaseError", type(err).__mro__)
    eq(err.pgcode, "CR001", "e.pgcode is CR001 (credit limit exceeded)")
    eq(err.diag.sqlstate, "CR001", "e.diag.sqlstate is CR001")
    eq(err.diag.severity, "ERROR", "e.diag.severity is ERROR")
    eq(err.diag.message_primary, 'credit limit of customer "501" exceeded',
       "e.diag.message_primary names the customer")
    # exposure in the detail is the account's figure before this order; the
    # first order of this transaction (100) is already in it
    eq(err.diag.message_detail,
       "Credit limit 10000, temporary limit in force 0, exposure 6099.50, "
       "this order adds 3900.51, available credit 3900.50.",
       "e.diag.message_detail: limit, temporary limit, exposure, the order's amount, available")
    eq(err.diag.message_hint,
       "Reduce the order to at most the available credit, collect payment first, or have the "
       "credit limit raised (or a temporary limit granted) in credit.accounts.",
       "e.diag.message_hint says what to do")
    eq((err.diag.schema_name, err.diag.table_name), ("app", "orders"),
       "e.diag.schema_name / table_name name the application's table")
    eq(app.get_transaction_status(), psycopg2.extensions.TRANSACTION_STATUS_INERROR,
       "the connection's transaction is in error")
    try:
        one(app, "SELECT 1")
        ok(False, "further statements are refused until rollback", "no error")
    except psycopg2.errors.InFailedSqlTransaction as e:
        eq(e.pgcode, "25P02", "further statements are refused until rollback (25P02)")
    app.rollback()
    eq(one(app, "SELECT count(*) FROM app.orders WHERE order_id IN (10, 11)"), 0,
       "after rollback neither order of the transaction exists")
    eq(exposure("501"), before, "exposure unchanged after the rolled-back transaction (5999.50)")
    eq(before, Decimal("5999.50"), "exposure is still 5999.50")
    app.close()


def savepoint():
    app = connect(APP_ROLE, APP_PASSWORD)
    with app.cursor() as cur:
        cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (20, 501, 1000)")
        cur.execute("SAVEPOINT before_big_order")
        code = None
        try:
            cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (21, 501, 3000.51)")
        except psycopg2.Error as e:
            code = e.pgcode
            detail = e.diag.message_detail
        eq(code, "CR001", "inside a transaction: the big order fails with CR001")
        if code == "CR001":
            eq(detail, "Credit limit 10000, temporary limit in force 0, exposure 6999.50, "
                       "this order adds 3000.51, available credit 3000.50.",
               "its detail counts the order placed earlier in the same transaction")
        cur.execute("ROLLBACK TO SAVEPOINT before_big_order")
        cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (22, 501, 3000.50)")
    app.commit()
    eq(rows(admin, "SELECT order_id FROM app.orders WHERE order_id BETWEEN 20 AND 22 ORDER BY 1"),
       [(20,), (22,)], "after ROLLBACK TO SAVEPOINT the transaction goes on: orders 20 and 22 committed")
    eq(exposure("501"), Decimal("10000.00"), "exposure exactly at the limit: 10000.00")
    eq(one(admin, "SELECT status FROM credit.accounts WHERE customer_key = '501'"), "watch",
       "account 501 is on watch at 100 %")
    # one cent more is refused, a zero-amount order still passes
    with app.cursor() as cur:
        try:
            cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (23, 501, 0.01)")
            ok(False, "one cent over the limit is refused", "no error")
        except psycopg2.Error as e:
            eq((e.pgcode, e.diag.message_detail),
               ("CR001", "Credit limit 10000, temporary limit in force 0, exposure 10000.00, "
                         "this order adds 0.01, available credit 0.00."),
               "one cent over the limit is refused: CR001, available credit 0.00")
    app.rollback()
    with app.cursor() as cur:
        cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (24, 501, 0)")
    app.commit()
    eq(exposure("501"), Decimal("10000.00"), "an order of 0 passes at the limit")
    app.close()


def other_errors():
    app = connect(APP_ROLE, APP_PASSWORD)
    with app.cursor() as cur:
        try:
            cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (30, 599, 10)")
            ok(False, "an order of a customer without an account fails", "no error")
        except psycopg2.Error as e:
            eq((e.pgcode, e.diag.message_primary), ("CR003", 'customer "599" has no credit account'),
               "an order of a customer without an account: CR003")
            eq(e.diag.message_hint,
               "Open one first: INSERT INTO credit.accounts (customer_key, credit_limit) VALUES ('599', ...).",
               "CR003 hint shows the INSERT that opens the account")
    app.rollback()
    admin.cursor().execute("UPDATE credit.accounts SET status = 'stop' WHERE customer_key = '502'")
    with app.cursor() as cur:
        try:
            cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (31, 502, 1)")
            ok(False, "an order of a stopped account fails", "no error")
        except psycopg2.Error as e:
            eq((e.pgcode, e.diag.message_primary),
               ("CR002", 'credit account of customer "502" is stopped'),
               "an order of a stopped account: CR002")
            eq(e.diag.message_detail,
               "The account's credit status is stop; every increase of its exposure is refused "
               "(this order would add 1.00).", "CR002 detail names the amount")
    app.rollback()
    admin.cursor().execute("UPDATE credit.accounts SET status = 'ok' WHERE customer_key = '502'")
    eq(exposure("502"), Decimal("0"), "no exposure left by the refused orders of 502")
    app.close()


def copy_in():
    app = connect(APP_ROLE, APP_PASSWORD)
    import io
    good = io.StringIO("40\t504\t1500.00\topen\n41\t504\t500.00\tconfirmed\n")
    with app.cursor() as cur:
        cur.copy_expert("COPY app.orders (order_id, customer_id, amount, status) FROM STDIN", good)
    app.commit()
    eq(exposure("504"), Decimal("2000.00"), "COPY of two orders: exposure 2000.00, at the limit")
    bad = io.StringIO("42\t504\t0.00\topen\n43\t504\t0.01\topen\n")
    with app.cursor() as cur:
        try:
            cur.copy_expert("COPY app.orders (order_id, customer_id, amount, status) FROM STDIN", bad)
            ok(False, "COPY with an over-limit row fails", "no error")
        except psycopg2.Error as e:
            eq((e.pgcode, e.diag.message_detail),
               ("CR001", "Credit limit 2000, temporary limit in force 0, exposure 2000.00, "
                         "this order adds 0.01, available credit 0.00."),
               "COPY with an over-limit row fails with CR001 and its detail")
    app.rollback()
    eq(one(admin, "SELECT count(*) FROM app.orders WHERE order_id IN (42, 43)"), 0,
       "the failed COPY wrote no row")
    eq(exposure("504"), Decimal("2000.00"), "exposure unchanged after the failed COPY")
    app.close()


def race(first_commits):
    """
    A (uncommitted) holds an order of 3000 on 502 (limit 5000); B's order
    of 2500 fits only if A aborts.  B must wait on the account, then succeed
    after A's rollback, or fail with CR001 after A's commit.
    """
    tag = "commit" if first_commits else "rollback"
    base = 100 if first_commits else 50
    a = connect(APP_ROLE, APP_PASSWORD, app_name="credit-client-A")
    b = connect(APP_ROLE, APP_PASSWORD, app_name="credit-client-B")
    with b.cursor() as cur:
        cur.execute("SET statement_timeout = '30s'")
    b.commit()
    b_pid = b.get_backend_pid()
    with a.cursor() as cur:
        cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (%s, 502, 3000)",
                    (base,))
    result = {}

    def place_b():
        t0 = time.monotonic()
        try:
            with b.cursor() as cur:
                cur.execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (%s, 502, 2500)",
                            (base + 1,))
            b.commit()
            result["outcome"] = "committed"
        except psycopg2.Error as e:
            result["outcome"] = e.pgcode
            result["detail"] = e.diag.message_detail
            b.rollback()
        result["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=place_b, daemon=True)
    t.start()
    # wait until B is seen waiting for a lock (at most 10 s)
    waiting = None
    for _ in range(100):
        waiting = one(admin, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (b_pid,))
        if waiting == "Lock" or not t.is_alive():
            break
        time.sleep(0.1)
    eq(waiting, "Lock", f"race ({tag}): B's order waits on a lock while A's order is uncommitted")
    ok(t.is_alive(), f"race ({tag}): B has not finished while A is open")
    eq(one(admin, "SELECT exposure FROM credit.accounts WHERE customer_key = '502'"), Decimal("0"),
       f"race ({tag}): other sessions still see exposure 0 of 502")
    time.sleep(0.3)
    if first_commits:
        a.commit()
    else:
        a.rollback()
    t.join(20)
    ok(not t.is_alive(), f"race ({tag}): B finishes within 20 s of A's {tag}")
    if first_commits:
        eq((result.get("outcome"), result.get("detail")),
           ("CR001", "Credit limit 5000, temporary limit in force 0, exposure 3000.00, "
                     "this order adds 2500.00, available credit 2000.00."),
           "race (commit): B decides on A's committed exposure and fails with CR001")
        eq(exposure("502"), Decimal("3000.00"), "race (commit): exposure 3000 (A's order only)")
    else:
        eq(result.get("outcome"), "committed", "race (rollback): B's order succeeds after A aborts",
           result)
        eq(exposure("502"), Decimal("2500.00"), "race (rollback): exposure 2500 (B's order only)")
    a.close()
    b.close()


def race_rollback():
    race(False)


def race_commit():
    # release B's order of the first race so A's 3000 fits again
    admin.cursor().execute("DELETE FROM app.orders WHERE order_id = 51")
    eq(exposure("502"), Decimal("0"), "race (commit): 502 back to exposure 0 before the second race")
    race(True)


def hold_table():
    bi = connect(BI_ROLE, BI_PASSWORD, autocommit=True, app_name="credit-client-listener")
    bi.cursor().execute("LISTEN credit_events")
    app = connect(APP_ROLE, APP_PASSWORD)
    with app.cursor() as cur:
        cur.execute("INSERT INTO app.edi_orders (order_id, customer_id, amount) VALUES (1, 503, 2000)")
        cur.execute("INSERT INTO app.edi_orders (order_id, customer_id, amount) VALUES (2, 503, 1500) "
                    "RETURNING status")
        eq(cur.fetchone()[0], "open",
           "hold table: INSERT ... RETURNING shows the status the order was inserted with")
        cur.execute("SELECT order_id, status FROM app.edi_orders ORDER BY 1")
        eq(cur.fetchall(), [(1, "open"), (2, "credit_hold")],
           "hold table: no error; the over-limit order reads back as credit_hold")
    app.commit()
    eq(exposure("503"), Decimal("2000.00"), "hold table: the held order is not exposure (2000.00)")
    eq(rows(admin, "SELECT order_key, customer_key, amount, refusal_code, state, changed_by "
                   "FROM credit.held_orders ORDER BY hold_id"),
       [("2", "503", Decimal("1500.00"), "CR001", "held", APP_ROLE)],
       "credit.held_orders: order 2 held for CR001, by the application role")
    eq(rows(admin, "SELECT kind, customer_key, order_key, order_amount, requester "
                   "FROM credit.applications ORDER BY application_id"),
       [("order_release", "503", "2", Decimal("1500.00"), APP_ROLE)],
       "an order_release application opened for the held order")
    # the notification, through the driver
    events = []
    deadline = time.monotonic() + 5
    import json
    import select
    while time.monotonic() < deadline and not any(ev.get("event") == "order_held" for ev in events):
        if select.select([bi], [], [], 0.5) != ([], [], []):
            bi.poll()
            while bi.notifies:
                note = bi.notifies.pop(0)
                try:
                    events.append(json.loads(note.payload))
                except ValueError:
                    events.append({"raw": note.payload})
    held = [ev for ev in events if ev.get("event") == "order_held"]
    eq([(ev.get("customer_key"), ev.get("order_key"), ev.get("amount")) for ev in held],
       [("503", "2", 1500.00)], "LISTEN credit_events: one order_held event for order 2 of 503")
    app.close()
    bi.close()


def reconcile():
    eq(rows(admin, "SELECT * FROM credit.reconcile()"), [],
       "credit.reconcile() finds no difference after all of the above")
    eq(rows(admin, "SELECT * FROM credit.verify_audit()"), [], "credit.verify_audit() returns no rows")


# --------------------------------------------------------------------------
# reading, as the BI login
# --------------------------------------------------------------------------
def view_exists(name):
    return one(admin, "SELECT to_regclass(%s) IS NOT NULL", (name,))


def columns_of(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        names = [d.name for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


# the figures every view must agree with, per customer (limit, exposure)
EXPECTED = {
    "501": (Decimal("10000"), Decimal("10000.00")),
    "502": (Decimal("5000"), Decimal("3000.00")),
    "503": (Decimal("3000"), Decimal("2000.00")),
    "504": (Decimal("2000"), Decimal("2000.00")),
}


def reader():
    bi = connect(BI_ROLE, BI_PASSWORD, app_name="credit-client-bi")
    bi.set_session(readonly=True, autocommit=False)
    eq(one(bi, "SELECT current_user"), BI_ROLE, "BI reader connects as its own login role")
    # the account view the README documents
    got = {r["customer_key"]: (r["credit_limit"], r["exposure"], r["available_credit"])
           for r in columns_of(bi, "SELECT * FROM credit.account_balances")}
    eq(got, {k: (lim, e, lim - e) for k, (lim, e) in EXPECTED.items()},
       "credit.account_balances: limit, exposure and available credit of every account")
    eq(columns_of(bi, "SELECT * FROM credit.blocked_orders"),
       [{"customer_key": "503", "held_orders": 1, "blocked_amount": Decimal("1500.00")}],
       "credit.blocked_orders: 503 has 1500.00 blocked")
    try:
        bi.cursor().execute("INSERT INTO app.orders (order_id, customer_id, amount) VALUES (99, 501, 1)")
        ok(False, "BI reader cannot place orders", "no error")
    except psycopg2.Error as e:
        ok(e.pgcode in ("42501", "25006"), f"BI reader cannot place orders ({e.pgcode})")
    bi.rollback()

    # the reporting views (sql/reporting.sql), read the way a BI tool would
    if view_exists("credit.report_customer_360"):
        r = columns_of(bi, "SELECT * FROM credit.report_customer_360 WHERE customer_key = %s", ("501",))
        eq([(x["credit_limit"], x["effective_limit"], x["exposure"], x["available"], x["utilization"],
             x["status"]) for x in r],
           [(Decimal("10000"), Decimal("10000"), Decimal("10000.00"), Decimal("0.00"), Decimal("1.0000"),
             "watch")],
           "report_customer_360 WHERE customer_key = '501': limit, exposure, available, utilization, status")
        allrows = columns_of(bi, "SELECT * FROM credit.report_customer_360")
        eq({x["customer_key"]: (x["credit_limit"], x["exposure"]) for x in allrows}, EXPECTED,
           "report_customer_360: limit and exposure of every account")
        eq([(x["open_items"], x["open_amount"]) for x in allrows if x["customer_key"] == "501"],
           [(0, Decimal("0"))], "report_customer_360: 501 has no receivables")
    else:
        skip("report_customer_360: limit and exposure per customer",
             "view credit.report_customer_360 not available yet")
    if view_exists("credit.report_utilization"):
        allrows = columns_of(bi, "SELECT * FROM credit.report_utilization")
        eq({x["customer_key"]: (x["effective_limit"], x["exposure"]) for x in allrows}, EXPECTED,
           "report_utilization: effective limit and exposure of every account")
        eq(sorted((x["customer_key"], x["utilization"], x["on_watch_list"]) for x in allrows),
           [("501", Decimal("1.0000"), True), ("502", Decimal("0.6000"), False),
            ("503", Decimal("0.6667"), False), ("504", Decimal("1.0000"), True)],
           "report_utilization: utilization and watch list")
    else:
        skip("report_utilization: limit and exposure per customer",
             "view credit.report_utilization not available yet")
    bi.close()


def aging():
    # invoice an order through the ledger (as finance would) and read the aging
    with admin.cursor() as cur:
        cur.execute("""
            INSERT INTO credit.receivables (customer_key, invoice_key, amount, invoice_date, due_date)
            VALUES ('504', 'INV-504-1', 800.00, current_date - 50, current_date - 20)""")
        cur.execute("UPDATE app.orders SET status = 'shipped' WHERE order_id = 41")  # invoiced
    eq(exposure("504"), Decimal("2300.00"), "an invoice of 800 counts with the open orders: 1500 + 800")
    bi = connect(BI_ROLE, BI_PASSWORD, autocommit=True, app_name="credit-client-bi")
    eq(rows(bi, "SELECT bucket, amount, items FROM credit.aging(current_date) WHERE customer_key = %s",
            ("504",)),
       [("1-30", Decimal("800.00"), 1)], "credit.aging through the driver: 800.00 in 1-30 for 504")
    if view_exists("credit.report_aging"):
        eq([tuple(x) for x in rows(bi, "SELECT currency, bucket_no, bucket, amount, items, customers "
                                        "FROM credit.report_aging ORDER BY currency, bucket_no")],
           [("CNY", 0, "not due", Decimal("0"), 0, 0), ("CNY", 1, "1-30", Decimal("800.00"), 1, 1),
            ("CNY", 2, "31-60", Decimal("0"), 0, 0), ("CNY", 3, "61-90", Decimal("0"), 0, 0),
            ("CNY", 4, ">90", Decimal("0"), 0, 0)],
           "report_aging: every bucket, 504's 800.00 in 1-30")
    else:
        skip("report_aging: 504's overdue 800.00", "view credit.report_aging not available yet")
    if view_exists("credit.report_customer_360"):
        eq([tuple(x) for x in rows(bi, "SELECT exposure, open_items, open_amount, overdue_amount, days_overdue "
                                        "FROM credit.report_customer_360 WHERE customer_key = %s", ("504",))],
           [(Decimal("2300.00"), 1, Decimal("800.00"), Decimal("800.00"), 20)],
           "report_customer_360 of 504: exposure 2300.00, one invoice of 800.00 overdue 20 days")
    else:
        skip("report_customer_360 of 504 with its invoice", "view credit.report_customer_360 not available yet")
    bi.close()


section("set-up", setup)
section("privileges", privileges)
section("orders that fit", orders_that_fit)
section("over the limit", over_limit)
section("savepoint", savepoint)
section("other refusals", other_errors)
section("COPY", copy_in)
section("race, first rolls back", race_rollback)
section("race, first commits", race_commit)
section("hold table", hold_table)
section("reader", reader)
section("aging", aging)
section("reconcile", reconcile)

print(f"1..{n}")
if failures:
    print(f"# {failures} of {n} failed")
sys.exit(1 if failures else 0)
