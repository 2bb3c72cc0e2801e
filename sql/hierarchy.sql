/*
 * hierarchy.sql: group credit limits.  An account may have a parent
 * (credit.accounts.parent_key): a corporate group's account above its
 * subsidiaries', a subsidiary's above its branches'.  A parent's exposure
 * includes its descendants', and an increase on any account must fit the
 * account's own available credit and every ancestor's (the C ledger,
 * src/exposure.c, applies each change to the whole chain, locking root
 * first).  Accounts move between parents only through credit.move_account
 * (src/hierarchy.c), which moves their exposure along.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

CREATE FUNCTION credit.move_account(customer text, new_parent text)
RETURNS credit.accounts
AS 'MODULE_PATHNAME', 'credit_move_account'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.move_account(text, text) IS
'Moves a customer''s account under new_parent (NULL: no parent) with its exposure: off the old parent and its ancestors, onto the new ones, without a limit check (a new parent over its limit gets status hold). Waits for transactions that have changed exposure or locked account rows (LOCK credit.accounts IN EXCLUSIVE MODE) and holds new ones off until it commits; plain reads go on. 42704: an unknown customer or parent; 23514: the move would make a cycle; 22004: no customer; 25000: above READ COMMITTED; 54000: the tree would be deeper than 63 levels. Returns the account row.';

/*
 * Where each account stands in its tree: its root and its depth below it.
 * (root_key, depth, customer_key) is the order in which the ledger locks
 * accounts; SQL that locks many accounts (rescore, run_dunning) locks them
 * in that order too, so it cannot deadlock with orders.
 */
CREATE VIEW credit.account_tree WITH (security_invoker = true) AS
WITH RECURSIVE t AS (
	SELECT a.customer_key, a.customer_key AS root_key, 0 AS depth
	  FROM credit.accounts a
	 WHERE a.parent_key IS NULL
	UNION ALL
	SELECT a.customer_key, t.root_key, t.depth OPERATOR(pg_catalog.+) 1
	  FROM credit.accounts a
	  JOIN t ON a.parent_key OPERATOR(pg_catalog.=) t.customer_key
)
SELECT t.customer_key, t.root_key, t.depth FROM t;

COMMENT ON VIEW credit.account_tree IS
'Each account''s place in its group tree: the root account above it and its depth below it (0: a root). The ledger locks accounts in (root_key, depth, customer_key) order.';
COMMENT ON COLUMN credit.account_tree.customer_key IS 'The account.';
COMMENT ON COLUMN credit.account_tree.root_key IS 'The topmost account above it (itself for an account without a parent).';
COMMENT ON COLUMN credit.account_tree.depth IS 'Levels below the root: 0 for a root, 1 for its children, ...';

/*
 * The SQL of a per-customer exposure query (columns customer_key,
 * exposure) rolled up the parent chains: each account's own plus its
 * descendants'.  reconcile, attach_orders and detach_orders apply it.
 */
CREATE FUNCTION credit.rolled_up_query(per_customer text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.format(
	'WITH RECURSIVE c AS (SELECT p.customer_key, pg_catalog.sum(p.exposure) AS exposure '
	'FROM (%s) p GROUP BY 1), '
	'up AS (SELECT c.customer_key COLLATE "C" AS k, c.exposure, 0 AS depth FROM c '
	'UNION ALL SELECT a.parent_key, up.exposure, up.depth OPERATOR(pg_catalog.+) 1 '
	'FROM up JOIN credit.accounts a ON a.customer_key OPERATOR(pg_catalog.=) up.k '
	'WHERE a.parent_key IS NOT NULL AND up.depth OPERATOR(pg_catalog.<) 64) '
	'SELECT up.k AS customer_key, pg_catalog.sum(up.exposure) AS exposure FROM up GROUP BY 1',
	$1);

COMMENT ON FUNCTION credit.rolled_up_query(text) IS
'Internal: wraps the SQL of a per-customer exposure query (customer_key, exposure) so that each account also gets its descendants'' exposure.';

/*
 * A member's exposure is part of its ancestors': deleting the member would
 * leave it there.  (A root account may be deleted as before.)
 */
CREATE FUNCTION credit.accounts_delete_check()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF OLD.parent_key IS NOT NULL
	   AND credit.live_exposure(OLD.customer_key, OLD.exposure) OPERATOR(pg_catalog.<>) 0 THEN
		RAISE EXCEPTION 'cannot delete customer "%" while it has exposure', OLD.customer_key
			USING ERRCODE = '55000',
				  DETAIL = pg_catalog.format('Its exposure %s is part of the exposure of group "%s".',
											 OLD.exposure, OLD.parent_key),
				  HINT = pg_catalog.format('Close its open items, or move it out of the group first: SELECT credit.move_account(%L, NULL).',
										   OLD.customer_key);
	END IF;
	RETURN OLD;
END;
$$;

COMMENT ON FUNCTION credit.accounts_delete_check() IS
'BEFORE DELETE on credit.accounts: a member of a group (parent_key) with exposure cannot be deleted (55000).';

CREATE TRIGGER accounts_delete_check
	BEFORE DELETE ON credit.accounts
	FOR EACH ROW EXECUTE FUNCTION credit.accounts_delete_check();
