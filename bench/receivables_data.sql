/*
 * bench/receivables_data.sql: data generators for the receivables part of
 * `make bench` (bench/receivables.sh), as set-based INSERT ... SELECT through
 * the extension's own tables, so every row passes the ledger triggers as an
 * application's would.  Deterministic: "random" figures come from hashint8
 * of the row number, so two runs load the same rows.
 *
 *   bench.load_accounts(customers)
 *       customers 1..n, limit 1e12 (nothing is ever refused), 30 days term
 *   bench.load_receivables(lo, hi, customers, as_of)
 *       invoices lo..hi: a customer drawn from 1..customers, invoiced 0..149
 *       days before as_of, due 30 days later, amount 100.00 .. 99999.99,
 *       disputed 1 in 50
 *   bench.load_payments(every, as_of)
 *       for every n-th undisputed invoice: a payment of half its amount,
 *       allocated to it (the invoice stays open, partly paid)
 */
CREATE SCHEMA bench;

/* a non-negative pseudo-random integer for (row, salt) */
CREATE FUNCTION bench.h(g bigint, salt integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hashint8(g * 8 + salt)::bigint & 2147483647;

CREATE FUNCTION bench.load_accounts(customers integer)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.accounts (customer_key, customer_name, credit_limit, currency,
								 owner, payment_term_days)
	SELECT g::text, 'Customer ' || g || ' Ltd.', 1e12, 'CNY',
		   'sales' || (g % 40), 30
	  FROM generate_series(1, customers) g;
	SELECT count(*) FROM credit.accounts;
END;

CREATE FUNCTION bench.load_receivables(lo bigint, hi bigint, customers integer, as_of date)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.receivables (customer_key, invoice_key, amount, currency,
									invoice_date, due_date, disputed, order_ref)
	SELECT (1 + bench.h(g, 1) % customers)::text,
		   'INV-' || lpad(g::text, 8, '0'),
		   100 + (bench.h(g, 2) % 9990000) / 100.0,
		   'CNY',
		   as_of - (bench.h(g, 3) % 150)::integer,
		   as_of - (bench.h(g, 3) % 150)::integer + 30,
		   bench.h(g, 4) % 50 = 0,
		   'SO-' || g
	  FROM generate_series(lo, hi) g;
	SELECT hi - lo + 1;
END;

CREATE FUNCTION bench.load_payments(every integer, as_of date)
RETURNS bigint
LANGUAGE sql
BEGIN ATOMIC
	INSERT INTO credit.payments (customer_key, payment_key, amount, currency, received_on)
	SELECT r.customer_key, 'PAY-' || r.invoice_key, round(r.amount / 2, 2), r.currency, as_of
	  FROM credit.receivables r
	 WHERE r.receivable_id % every = 0 AND NOT r.disputed;
	INSERT INTO credit.allocations (payment_id, receivable_id, amount, allocated_on)
	SELECT p.payment_id, r.receivable_id, p.amount, as_of
	  FROM credit.payments p
	  JOIN credit.receivables r
		ON r.customer_key = p.customer_key
	   AND r.invoice_key = substr(p.payment_key, 5)
	 ORDER BY p.payment_id;
	SELECT count(*) FROM credit.allocations;
END;
