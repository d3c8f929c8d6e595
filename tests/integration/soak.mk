# tests/integration/soak.mk: `make soak`, the long soak and fault-injection run (make check runs
# only the short one, soak_short.sh). make soak SOAK_DURATION=3600 for an hour of load.
SOAK_DURATION ?= 600
SOAK_RATE ?= 8

soak: deps
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 tests/integration/soak.py --duration $(SOAK_DURATION) --rate $(SOAK_RATE) --rss-check
