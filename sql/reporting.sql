/*
 * reporting.sql: the views BI tools read (see README "For BI tools").
 */

\echo Use "CREATE EXTENSION credit" to load this file. \quit
