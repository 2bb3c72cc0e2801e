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
RETURNS void
AS 'MODULE_PATHNAME', 'credit_move_account'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.move_account(text, text) IS
'Moves a customer''s account under new_parent (NULL: no parent) with its exposure: off the old parent and its ancestors, onto the new ones, without a limit check (a new parent over its limit gets status hold). Waits for transactions that have changed exposure (LOCK credit.accounts IN SHARE ROW EXCLUSIVE MODE) and holds new ones off until it commits. 42704: an unknown customer or parent; 23514: the move would make a cycle; 22004: no customer; 25000: above READ COMMITTED.';
