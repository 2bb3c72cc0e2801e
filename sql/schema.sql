/*
 * schema.sql: refuses a schema credit that someone else prepared, and
 * defines credit.caller().
 *
 * The control file names schema credit: CREATE EXTENSION creates it, owned
 * by the installing role, when it does not exist, and uses it when it does.
 * A schema that already exists is only accepted when the installing role
 * owns it, it holds nothing, and no other role may create in it: otherwise
 * a role that prepared it could have planted objects (or could plant them
 * later) that the extension's code would find.  The installation fails
 * with 42P06 and changes nothing.
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit

DO $$
DECLARE
	nsp oid := 'credit'::pg_catalog.regnamespace;
	owner name;
BEGIN
	SELECT r.rolname INTO owner
	  FROM pg_catalog.pg_namespace n
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
	 WHERE n.oid OPERATOR(pg_catalog.=) nsp;
	IF owner OPERATOR(pg_catalog.<>) CURRENT_USER THEN
		RAISE EXCEPTION 'schema "credit" already exists and belongs to role "%"', owner
			USING ERRCODE = '42P06',
				  HINT = 'Drop or rename that schema (after checking what it holds), then create the extension.';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator o WHERE o.oprnamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_collation c WHERE c.collnamespace OPERATOR(pg_catalog.=) nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_conversion c WHERE c.connamespace OPERATOR(pg_catalog.=) nsp) THEN
		RAISE EXCEPTION 'schema "credit" already exists and is not empty'
			USING ERRCODE = '42P06',
				  HINT = 'Drop or rename that schema (after checking what it holds), then create the extension.';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n,
					  LATERAL pg_catalog.aclexplode(n.nspacl) a
				WHERE n.oid OPERATOR(pg_catalog.=) nsp
				  AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
				  AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner) THEN
		RAISE EXCEPTION 'schema "credit" already exists and other roles may create objects in it'
			USING ERRCODE = '42P06',
				  HINT = 'Drop or rename that schema, then create the extension.';
	END IF;
END;
$$;

CREATE FUNCTION credit.caller()
RETURNS name
AS 'MODULE_PATHNAME', 'credit_caller'
LANGUAGE C STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION credit.caller() IS
'The role acting: CURRENT_USER, except inside the extension''s SECURITY DEFINER functions and internal queries, where it is the role that called them (not the extension''s owner). Approval rights, requesters and audit rows use it.';
