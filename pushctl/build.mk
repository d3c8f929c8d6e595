# pushctl/: the operator's tool (keys, onion requests, registry reads).
PUSHCTL_SRCS := $(wildcard pushctl/*.c)
TOOLS += $(BIN)/pushctl
$(BIN)/pushctl: $(PUSHCTL_SRCS:%.c=$(BUILD)/%.o) $(ROUTER_LIB) $(COMMON_LIB)
	$(call link,$(LIBS))
