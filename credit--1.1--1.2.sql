/*
 * credit--1.1--1.2.sql: upgrade from 1.1 to 1.2 (frozen once 1.2 is released).
 *
 * 1.2 adds group credit limits: accounts.parent_key, exposure rolled up to
 * every ancestor, credit.move_account, credit.reconcile over hierarchies,
 * and credit.own_exposure for the reports that sum exposure.
 */

\echo Use "ALTER EXTENSION credit UPDATE TO '1.2'" to load this file. \quit

ALTER TABLE credit.accounts
	ADD COLUMN parent_key text COLLATE "C"
		REFERENCES credit.accounts (customer_key) ON UPDATE RESTRICT ON DELETE RESTRICT,
	ADD CONSTRAINT accounts_parent_key_check
		CHECK (parent_key OPERATOR(pg_catalog.<>) customer_key);
CREATE INDEX accounts_parent_key_idx ON credit.accounts (parent_key);
COMMENT ON COLUMN credit.accounts.parent_key IS
'The account above this one (a group above its subsidiaries), or NULL. Its exposure includes this account''s, and an increase here must fit it too. Set at INSERT (while the account has no exposure) or by credit.move_account.';
COMMENT ON COLUMN credit.accounts.exposure IS
'Open exposure kept by the engine: the customer''s own plus that of every account below it (parent_key). Do not write it; credit.reconcile() checks and repairs it.';

/* sql/hierarchy.sql */
CREATE FUNCTION credit.move_account(customer text, new_parent text)
RETURNS void
AS 'MODULE_PATHNAME', 'credit_move_account'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.move_account(text, text) IS
'Moves a customer''s account under new_parent (NULL: no parent) with its exposure: off the old parent and its ancestors, onto the new ones, without a limit check (a new parent over its limit gets status hold). Waits for transactions that have changed exposure (LOCK credit.accounts IN SHARE ROW EXCLUSIVE MODE) and holds new ones off until it commits. 42704: an unknown customer or parent; 23514: the move would make a cycle; 22004: no customer; 25000: above READ COMMITTED.';
REVOKE ALL ON FUNCTION credit.move_account(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credit.move_account(text, text) TO credit_admin, credit_risk;

/* the audit trail of accounts watches parent_key too */
DROP TRIGGER audit_insert ON credit.accounts;
DROP TRIGGER audit_update ON credit.accounts;
DROP TRIGGER audit_delete ON credit.accounts;
DROP TRIGGER audit_no_truncate ON credit.accounts;
SELECT credit.audit_table('credit.accounts', 'account:', 'customer_key',
						  'customer_key,credit_limit,temp_limit,temp_limit_from,temp_limit_until,payment_term_days,currency,owner,region,parent_key,watch_ratio,status,manual_status,dunning_status');

/* reconcile rolls exposure up the parent chain */
CREATE OR REPLACE FUNCTION credit.reconcile(repair boolean DEFAULT false)
RETURNS TABLE (customer_key text, stored_exposure numeric,
			   computed_exposure numeric, difference numeric)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att		credit.attachments;
	parts	text := 'SELECT NULL::pg_catalog.text AS customer_key, 0::pg_catalog.numeric AS exposure WHERE false';
	rollup	text;
BEGIN
	IF repair THEN
		PERFORM credit.require_read_committed('credit.reconcile(repair => true)');
	END IF;
	FOR att IN SELECT * FROM credit.attachments ORDER BY orders::oid LOOP
		parts := parts || ' UNION ALL ' || credit.open_exposure_query(att);
		IF repair THEN
			EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', att.orders);
		END IF;
	END LOOP;
	IF repair THEN
		LOCK TABLE credit.accounts IN SHARE ROW EXCLUSIVE MODE;
	END IF;
	/*
	 * c: each customer's own exposure; r: rolled up the parent chain (an
	 * account's exposure includes its descendants')
	 */
	rollup := 'WITH RECURSIVE c AS (SELECT p.customer_key, pg_catalog.sum(p.exposure) AS exposure '
			  'FROM (%s) p GROUP BY 1), '
			  'up AS (SELECT c.customer_key AS k, c.exposure, 0 AS depth FROM c '
			  'UNION ALL SELECT a.parent_key, up.exposure, up.depth OPERATOR(pg_catalog.+) 1 '
			  'FROM up JOIN credit.accounts a ON a.customer_key OPERATOR(pg_catalog.=) up.k '
			  'WHERE a.parent_key IS NOT NULL AND up.depth OPERATOR(pg_catalog.<) 64), '
			  'r AS (SELECT up.k AS customer_key, pg_catalog.sum(up.exposure) AS exposure '
			  'FROM up GROUP BY 1) ';
	RETURN QUERY EXECUTE pg_catalog.format(
		rollup OPERATOR(pg_catalog.||)
		'SELECT a.customer_key::pg_catalog.text, a.exposure, '
		'COALESCE(c.exposure, 0), '
		'a.exposure OPERATOR(pg_catalog.-) COALESCE(c.exposure, 0) '
		'FROM credit.accounts a LEFT JOIN r c '
		'ON c.customer_key OPERATOR(pg_catalog.=) a.customer_key '
		'WHERE a.exposure OPERATOR(pg_catalog.<>) COALESCE(c.exposure, 0) '
		'ORDER BY 1', parts);
	IF repair THEN
		EXECUTE pg_catalog.format(
			rollup OPERATOR(pg_catalog.||)
			'UPDATE credit.accounts a SET exposure = COALESCE(c.exposure, 0) '
			'FROM credit.accounts a2 LEFT JOIN r c '
			'ON c.customer_key OPERATOR(pg_catalog.=) a2.customer_key '
			'WHERE a2.customer_key OPERATOR(pg_catalog.=) a.customer_key '
			'AND a.exposure OPERATOR(pg_catalog.<>) COALESCE(c.exposure, 0)',
			parts);
	END IF;
END;
$$;

COMMENT ON FUNCTION credit.reconcile(boolean) IS
'Recompute exposure from the attached tables (each customer''s own, rolled up to its ancestors) and return the accounts whose stored figure differs; with repair => true, lock the tables and correct them.';

/* reports sum own exposure */
CREATE VIEW credit.own_exposure WITH (security_invoker = true) AS
SELECT a.customer_key,
	   a.exposure OPERATOR(pg_catalog.-) COALESCE(ch.exposure, 0) AS own_exposure
  FROM credit.accounts a
  LEFT JOIN (SELECT c.parent_key, pg_catalog.sum(c.exposure) AS exposure
			   FROM credit.accounts c
			  WHERE c.parent_key IS NOT NULL
			  GROUP BY c.parent_key) ch
	ON ch.parent_key OPERATOR(pg_catalog.=) a.customer_key;

COMMENT ON VIEW credit.own_exposure IS
'Each account''s own exposure: credit.accounts.exposure less that of its children (whose exposure includes theirs). Summed over accounts it gives the total without counting a group''s members twice.';
COMMENT ON COLUMN credit.own_exposure.customer_key IS 'The customer.';
COMMENT ON COLUMN credit.own_exposure.own_exposure IS 'exposure minus the sum of the children''s exposure.';

CREATE OR REPLACE VIEW credit.report_grade_distribution WITH (security_invoker = true) AS
WITH active AS (
	SELECT g.grade, g.min_score
	  FROM credit.scorecard_grades g
	  JOIN credit.scorecards s ON s.scorecard_id OPERATOR(pg_catalog.=) g.scorecard_id
	 WHERE s.state OPERATOR(pg_catalog.=) 'active'
), grades AS (
	SELECT x.grade, x.min_score, true AS in_active_scorecard FROM active x
	UNION ALL
	SELECT d.grade, NULL::numeric, false
	  FROM (SELECT DISTINCT cg.grade FROM credit.customer_grades cg) d
	 WHERE NOT EXISTS (SELECT 1 FROM active x WHERE x.grade OPERATOR(pg_catalog.=) d.grade)
	UNION ALL
	SELECT NULL::text, NULL::numeric, false
), cust AS (
	SELECT a.currency, cg.grade,
		   pg_catalog.count(*) AS customers,
		   pg_catalog.sum(oe.own_exposure) AS exposure,
		   pg_catalog.avg(cg.score) AS avg_score
	  FROM credit.accounts a
	  JOIN credit.own_exposure oe ON oe.customer_key OPERATOR(pg_catalog.=) a.customer_key
	  LEFT JOIN credit.customer_grades cg ON cg.customer_key OPERATOR(pg_catalog.=) a.customer_key
	 GROUP BY 1, 2
), recv AS (
	SELECT o.currency, cg.grade,
		   pg_catalog.sum(o.open_amount) AS open_amount,
		   pg_catalog.sum(o.overdue_amount) AS overdue_amount
	  FROM (SELECT r.customer_key, r.currency,
				   pg_catalog.sum(r.open_amount) AS open_amount,
				   pg_catalog.sum(r.open_amount)
					   FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE) AS overdue_amount
			  FROM credit.receivables r
			 WHERE r.allocated OPERATOR(pg_catalog.<) r.amount
			 GROUP BY 1, 2) o
	  LEFT JOIN credit.customer_grades cg ON cg.customer_key OPERATOR(pg_catalog.=) o.customer_key
	 GROUP BY 1, 2
), cur AS (
	SELECT c.currency FROM cust c
	UNION SELECT r.currency FROM recv r
), grid AS (
	SELECT cur.currency, g.grade, g.min_score, g.in_active_scorecard,
		   COALESCE(c.customers, 0) AS customers,
		   COALESCE(c.exposure, 0) AS exposure,
		   c.avg_score,
		   COALESCE(r.open_amount, 0) AS open_amount,
		   COALESCE(r.overdue_amount, 0) AS overdue_amount
	  FROM cur
	 CROSS JOIN grades g
	  LEFT JOIN cust c ON c.currency OPERATOR(pg_catalog.=) cur.currency
					  AND c.grade IS NOT DISTINCT FROM g.grade
	  LEFT JOIN recv r ON r.currency OPERATOR(pg_catalog.=) cur.currency
					  AND r.grade IS NOT DISTINCT FROM g.grade
)
SELECT x.currency,
	   x.grade,
	   x.grade IS NOT NULL AS graded,
	   x.in_active_scorecard,
	   x.min_score,
	   x.customers,
	   pg_catalog.round(x.customers::numeric OPERATOR(pg_catalog./)
						NULLIF(pg_catalog.sum(x.customers) OVER w, 0), 4) AS customer_share,
	   x.exposure,
	   pg_catalog.round(x.avg_score, 2) AS avg_score,
	   x.open_amount,
	   pg_catalog.round(x.open_amount OPERATOR(pg_catalog./)
						NULLIF(pg_catalog.sum(x.open_amount) OVER w, 0), 4) AS receivable_share,
	   x.overdue_amount,
	   pg_catalog.round(x.overdue_amount OPERATOR(pg_catalog./)
						NULLIF(x.open_amount, 0), 4) AS overdue_share
  FROM grid x
WINDOW w AS (PARTITION BY x.currency);
COMMENT ON COLUMN credit.report_grade_distribution.exposure IS 'Sum of the accounts'' own exposure (credit.own_exposure: a group account without its members, which count in their own grades).';

CREATE OR REPLACE VIEW credit.report_collection_by_salesperson WITH (security_invoker = true) AS
WITH recv AS (
	SELECT r.customer_key,
		   pg_catalog.sum(r.open_amount) AS open_amount,
		   pg_catalog.sum(r.open_amount)
			   FILTER (WHERE r.due_date OPERATOR(pg_catalog.<) CURRENT_DATE) AS overdue_amount
	  FROM credit.receivables r
	 WHERE r.allocated OPERATOR(pg_catalog.<) r.amount
	 GROUP BY r.customer_key
), coll AS (
	SELECT m.customer_key, pg_catalog.sum(m.collected) AS collected,
		   pg_catalog.sum(m.credited) AS credited
	  FROM credit.collections_this_month m
	 GROUP BY m.customer_key
), g AS (
	SELECT a.owner, a.region, a.currency,
		   pg_catalog.count(*) AS customers,
		   pg_catalog.count(r.overdue_amount) AS customers_overdue,
		   pg_catalog.sum(oe.own_exposure) AS exposure,
		   COALESCE(pg_catalog.sum(r.open_amount), 0) AS open_amount,
		   COALESCE(pg_catalog.sum(r.overdue_amount), 0) AS overdue_amount,
		   COALESCE(pg_catalog.sum(c.collected), 0) AS collected,
		   COALESCE(pg_catalog.sum(c.credited), 0) AS credited
	  FROM credit.accounts a
	  JOIN credit.own_exposure oe ON oe.customer_key OPERATOR(pg_catalog.=) a.customer_key
	  LEFT JOIN recv r ON r.customer_key OPERATOR(pg_catalog.=) a.customer_key
	  LEFT JOIN coll c ON c.customer_key OPERATOR(pg_catalog.=) a.customer_key
	 GROUP BY a.owner, a.region, a.currency
)
SELECT g.owner,
	   g.region,
	   g.currency,
	   CURRENT_DATE AS as_of,
	   g.customers,
	   g.customers_overdue,
	   g.exposure,
	   g.open_amount,
	   g.overdue_amount,
	   pg_catalog.round(g.overdue_amount OPERATOR(pg_catalog./) NULLIF(g.open_amount, 0), 4)
		   AS overdue_share,
	   g.collected AS collected_this_month,
	   g.credited AS credited_this_month,
	   pg_catalog.round(g.collected OPERATOR(pg_catalog./)
						NULLIF(g.collected OPERATOR(pg_catalog.+) g.open_amount, 0), 4)
		   AS collection_rate
  FROM g;
COMMENT ON COLUMN credit.report_collection_by_salesperson.exposure IS 'Sum of the accounts'' own exposure (credit.own_exposure: a group account without its members, which count with their own owners).';

GRANT SELECT ON credit.own_exposure TO credit_admin, credit_risk, credit_finance, credit_sales, credit_bi;
