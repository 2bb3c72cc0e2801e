# credit: PGXS build, and the project's own targets (demo, test, bench).

EXTENSION = credit
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = credit
OBJS = src/credit.o src/accounts.o src/exposure.o src/enforce.o src/drop.o src/uscc.o src/scorecard.o src/audit.o src/reporting.o src/hierarchy.o src/currency.o src/shared_ledger.o

# The latest version's script is assembled from sql/, one file per concern,
# in this order.  Released scripts are frozen files: credit--1.0.sql (the
# first release) and one upgrade script per release after it.  Every schema
# change goes into sql/ AND into the next upgrade script; test/upgrade.sh
# proves that installing the latest version and upgrading from 1.0 give the
# same catalog.
SQL_SOURCES = sql/schema.sql sql/settings.sql sql/accounts.sql sql/hierarchy.sql sql/attach.sql sql/currency.sql sql/ledger.sql sql/receivables.sql sql/dunning.sql sql/aging.sql sql/profiles.sql sql/metrics.sql sql/scorecard.sql sql/rescore.sql sql/limit_history.sql sql/approvals.sql sql/holds.sql sql/audit.sql sql/roles.sql sql/reporting.sql
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA = $(EXTENSION)--1.0.sql $(EXTENSION)--1.0--1.1.sql $(EXTENSION)--1.1--1.2.sql $(EXTENSION)--1.2--1.3.sql $(EXTENSION)--1.3--1.4.sql $(EXTENSION)--1.4--1.5.sql $(EXTENSION)--1.5--1.6.sql

REGRESS = $(basename $(notdir $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test
ISOLATION = $(basename $(notdir $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -Werror -Wall -Wmissing-prototypes
EXTRA_CLEAN = results output_iso regression.diffs regression.out

PGXS := $(wildcard $(shell $(PG_CONFIG) --pgxs 2>/dev/null))
ifneq ($(PGXS),)
include $(PGXS)
endif

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES)
	cat $^ > $@

.PHONY: demo test bench deps stress-shared
deps:
	@bash test/setup.sh deps

demo: deps
	@bash test/setup.sh demo

test: deps
	@bash test/run_all.sh

bench: deps
	@bash bench/run.sh

# the stress run under the shared-memory ledger (a preloaded cluster of its
# own); not part of make test yet: see README, "Shared-memory exposure ledger"
stress-shared: deps
	@bash test/setup.sh build && bash test/shared_pass.sh bash test/stress.sh
