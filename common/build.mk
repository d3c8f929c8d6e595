# common/: code shared by at least two programs, built as one static library.
COMMON_SRCS := $(wildcard common/*.c)
COMMON_LIB  := $(BUILD)/libcommon.a
$(COMMON_LIB): $(COMMON_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
# Libraries every program may pull in (static archives drop what is unused).
LIBS := -lsodium -llmdb -lnghttp2 -ljansson -lssl -lcrypto -lseccomp -lexpat -lm
# libnats, for the programs that speak to the cluster bus (common/bus.c; docs/cluster.md).
NATS_LIBS := -lnats -lpthread
