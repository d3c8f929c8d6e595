# common/: code shared by several programs, built as three static libraries. Link order is the
# dependency order, and no program links them inside a --start-group, so a lower layer that
# reaches into a higher one fails to link:
#   libsender.a  common/sender/  provider HTTP clients, job loop, guard, OAuth (senders only)
#   libbchat.a   common/bchat/   Bchat request and statistics formats (ingress-onion, pushctl)
#   libcommon.a  common/         the base every daemon links: log, frame, config, daemon, sock, ...
# libsender.a and libbchat.a may use libcommon.a; libcommon.a uses neither. (The base holds
# onion_crypto.c and jwt.c because config.c checks the onion and APNs key files when it loads.)
COMMON_SRCS := $(wildcard common/*.c)
COMMON_LIB  := $(BUILD)/libcommon.a
$(COMMON_LIB): $(COMMON_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
SENDER_SRCS := $(wildcard common/sender/*.c)
SENDER_LIB  := $(BUILD)/libsender.a
$(SENDER_LIB): $(SENDER_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
BCHAT_SRCS := $(wildcard common/bchat/*.c)
BCHAT_LIB  := $(BUILD)/libbchat.a
$(BCHAT_LIB): $(BCHAT_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
# Libraries every program may pull in (static archives drop what is unused).
LIBS := -lsodium -llmdb -lnghttp2 -ljansson -lssl -lcrypto -lseccomp -lexpat -lm
# libnats, for the programs that speak to the cluster bus (common/bus.c; docs/cluster.md), is
# not linked: common/nats_lib.c loads it with dlopen in cluster mode only, by the soname of the
# libnats.so found here (a single-machine daemon never maps libnats nor protobuf-c).
NATS_LIBS := -lpthread
NATS_SONAME := $(shell objdump -p "$$($(CC) -print-file-name=libnats.so)" 2>/dev/null | awk '$$1 == "SONAME" { print $$2 }')
$(BUILD)/common/nats_lib.o: CFLAGS += $(if $(NATS_SONAME),-DNATS_SONAME='"$(NATS_SONAME)"')
