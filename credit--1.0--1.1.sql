/*
 * credit--1.0--1.1.sql: upgrade from 1.0 to 1.1.  Released scripts are frozen:
 * later changes go into credit--1.1--1.2.sql and so on.
 *
 * 1.1 adds the reporting views for BI tools, credit.exposure_snapshots and
 * credit.snapshot_exposure (their source is sql/reporting.sql).
 */

\echo Use "ALTER EXTENSION credit UPDATE TO '1.1'" to load this file. \quit
