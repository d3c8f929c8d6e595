# pushpipe — non-recursive build. Each directory contributes a build.mk fragment.
#   make            build every daemon, pushctl, the mock provider and the tests
#   make check      install missing packages, build, run every test
#   make run        install missing packages, build, start the pipeline under runit
#   make run-cluster  the same in cluster mode: three local nats-server nodes, two of each daemon
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
# A program records only the libraries it calls (LIBS below lists every library any program
# may need): each library mapped costs every process that maps it its relocated data pages.
LDFLAGS += -Wl,--as-needed
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

.PHONY: all deps check run run-cluster bench fuzz soak install clean
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

# The version the daemons and pushctl print (--version): `git describe` at build time, or
# VERSION=... from the command line (a source tree without git says "unknown").
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
VERSION_STAMP := $(BUILD)/.version
$(shell echo '$(VERSION)' | cmp -s - $(VERSION_STAMP) || echo '$(VERSION)' > $(VERSION_STAMP))
$(BUILD)/common/daemon.o: $(VERSION_STAMP)
$(BUILD)/common/daemon.o: CFLAGS += -DPUSHPIPE_VERSION='"$(VERSION)"'

include common/build.mk
include ingress/build.mk
include router/build.mk
include apns-sender/build.mk
include fcm-sender/build.mk
include wns-sender/build.mk
include hms-sender/build.mk
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

run-cluster: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-cluster.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/run.sh

fuzz: deps
	@$(MAKE) --no-print-directory all
	@scripts/fuzz.sh

# Installed layout (docs/packaging.md): daemons as $(SBINDIR)/pushpipe-<daemon>, pushctl in
# $(BINDIR), hand-written man pages (man/), the example configuration and the runit and
# supervisord trees in $(DATADIR), systemd units and tmpfiles.d. No bench tool, no mock.
# The build tree keeps bin/<daemon>. `daemons` builds only what is installed (make deb).
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
DATADIR     ?= $(PREFIX)/share/pushpipe
UNITDIR     ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
INSTALLED   := $(DAEMONS) $(BIN)/pushctl

.PHONY: daemons deb
daemons: $(INSTALLED)

# pushpipe.json(5): the hand-written page with docs/config.md's key tables (scripts/config-man.py).
$(BUILD)/man/pushpipe.json.5: man/pushpipe.json.5.in docs/config.md scripts/config-man.py
	@mkdir -p $(dir $@)
	python3 scripts/config-man.py man/pushpipe.json.5.in docs/config.md $@

install: $(INSTALLED) $(BUILD)/man/pushpipe.json.5
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DATADIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(TMPFILESDIR)
	for d in $(notdir $(DAEMONS)); do \
		install -m 0755 $(BIN)/$$d $(DESTDIR)$(SBINDIR)/pushpipe-$$d && \
		install -m 0644 man/pushpipe-$$d.8 $(DESTDIR)$(MANDIR)/man8/ || exit 1; \
	done
	install -m 0755 $(BIN)/pushctl $(DESTDIR)$(BINDIR)/pushctl
	install -m 0644 man/pushctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(BUILD)/man/pushpipe.json.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 deploy/pushpipe.json.example $(DESTDIR)$(DATADIR)/
	cp -R deploy/runit deploy/supervisord $(DESTDIR)$(DATADIR)/
	chmod -R u=rwX,go=rX $(DESTDIR)$(DATADIR)
	# The shipped files name /usr/sbin and PREFIX=/usr: point them at this installation.
	sed -i 's|^PREFIX=/usr$$|PREFIX=$(PREFIX)|' $(DESTDIR)$(DATADIR)/runit/*/run
	sed -i 's|=/usr/sbin/pushpipe-|=$(SBINDIR)/pushpipe-|' $(DESTDIR)$(DATADIR)/supervisord/pushpipe.conf
	for u in deploy/systemd/*.service deploy/systemd/pushpipe.target; do \
		sed 's|/usr/sbin/pushpipe-|$(SBINDIR)/pushpipe-|g' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/} && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -m 0644 deploy/systemd/pushpipe.tmpfiles $(DESTDIR)$(TMPFILESDIR)/pushpipe.conf

# A Debian package (debian/) built from a copy of the tree in a temporary directory, as
# dpkg-buildpackage writes its results into the parent directory; they end up in $(DEBDIR).
DEBDIR ?= $(BUILD)/deb
deb:
	@scripts/mkdeb.sh $(DEBDIR)

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
