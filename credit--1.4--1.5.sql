/*
 * credit--1.4--1.5.sql: upgrade from 1.4 to 1.5 (frozen once 1.5 is released).
 *
 * 1.5 makes the order trigger cheaper and the shared-memory ledger's
 * account locks complete: credit.enforce_orders() has no SET search_path
 * (its internal queries pin it in C).
 */

\echo Use "ALTER EXTENSION credit UPDATE TO '1.5'" to load this file. \quit

ALTER FUNCTION credit.enforce_orders() RESET search_path;
