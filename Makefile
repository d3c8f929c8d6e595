# pushpipe — non-recursive build. Each directory contributes a build.mk fragment.
#   make            build every daemon, pushctl, the mock provider and the tests
#   make check      install missing packages, build, run every test
#   make run        install missing packages, build, start the pipeline under runit
#   make SANITIZE=address,undefined check
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
SANITIZE ?=

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -fPIC $(WARN) -Icommon -MMD -MP
LDFLAGS ?=
# Relative relocations packed (DT_RELR, glibc 2.36): the loader reads a few hundred bytes per
# program instead of 14 KB of RELA entries, pages that each daemon otherwise keeps resident.
LDFLAGS += -Wl,-z,pack-relative-relocs
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

comma := ,
BUILD := build
BIN   := bin

# Filled by the fragments.
DAEMONS :=
TOOLS   :=
TESTS   :=
FUZZERS :=

.PHONY: all deps check run bench fuzz soak install clean
all:

define link
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(1)
endef

# Objects depend on the flags they were built with, so `make SANITIZE=...` rebuilds them all.
FLAGS_STAMP := $(BUILD)/.flags
$(shell mkdir -p $(BUILD); echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $(FLAGS_STAMP) || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $(FLAGS_STAMP))

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

include common/build.mk
include ingress/build.mk
include router/build.mk
include apns-sender/build.mk
include fcm-sender/build.mk
include wns-sender/build.mk
include statsd/build.mk
include pushctl/build.mk
include tests/build.mk
include bench/build.mk

all: $(DAEMONS) $(TOOLS) $(TESTS)

deps:
	@scripts/deps.sh

check: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-tests.sh $(TESTS)

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-local.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/run.sh

fuzz: deps
	@$(MAKE) --no-print-directory all
	@scripts/fuzz.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(DAEMONS) $(TOOLS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
