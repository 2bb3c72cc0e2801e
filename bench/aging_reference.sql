/*
 * aging_reference.sql: the receivables aging a DBA would write by hand, the
 * reference that credit.aging(as_of) is measured against.
 *
 * Same output as SELECT * FROM credit.aging(:'as_of') with the default
 * buckets and aging_basis 'due_date': one row per customer, currency and
 * non-empty bucket; open receivables only (open_amount > 0), those invoiced
 * on or before as_of; days past due = as_of - due_date; disputed ones
 * counted, and their part shown in disputed_amount.  Rows in no particular
 * order.
 *
 *     psql -v as_of=2026-11-30 -f bench/aging_reference.sql
 */
SELECT g.customer_key, g.currency, g.bucket_no,
	   CASE g.bucket_no WHEN 0 THEN 'not due' WHEN 1 THEN '1-30' WHEN 2 THEN '31-60'
						WHEN 3 THEN '61-90' ELSE '>90' END AS bucket,
	   CASE WHEN g.bucket_no = 0 THEN 'green'
			WHEN g.bucket_no <= 2 THEN 'yellow'
			ELSE 'red' END AS band,
	   g.amount, g.items, g.disputed_amount
  FROM (SELECT r.customer_key, r.currency,
			   CASE WHEN :'as_of'::date - r.due_date <= 0 THEN 0
					WHEN :'as_of'::date - r.due_date <= 30 THEN 1
					WHEN :'as_of'::date - r.due_date <= 60 THEN 2
					WHEN :'as_of'::date - r.due_date <= 90 THEN 3
					ELSE 4 END AS bucket_no,
			   sum(r.open_amount) AS amount,
			   count(*) AS items,
			   coalesce(sum(r.open_amount) FILTER (WHERE r.disputed), 0) AS disputed_amount
		  FROM credit.receivables r
		 WHERE r.open_amount > 0
		   AND r.invoice_date <= :'as_of'::date
		 GROUP BY 1, 2, 3) g;
