# pushctl/: the operator's tool (keys, onion requests, registry reads, legacy import).
# pushctl alone links libsqlite3 (import-legacy and import-uwpx read the old servers' databases); it
# and wns-sender link libcurl (send: an HTTP POST); libnats for cluster-import (cluster_cmd.c).
PUSHCTL_SRCS := $(wildcard pushctl/*.c)
TOOLS += $(BIN)/pushctl
$(BIN)/pushctl: $(PUSHCTL_SRCS:%.c=$(BUILD)/%.o) $(STATSD_LIB) $(ROUTER_LIB) $(BCHAT_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) -lsqlite3 -lcurl $(NATS_LIBS))
