# router/: main.c plus role files; role files also go into librouter.a for the unit tests.
ROUTER_LIB_SRCS := $(filter-out router/main.c,$(wildcard router/*.c))
ROUTER_LIB := $(BUILD)/librouter.a
$(ROUTER_LIB): $(ROUTER_LIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
DAEMONS += $(BIN)/router
$(BIN)/router: $(BUILD)/router/main.o $(ROUTER_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) $(NATS_LIBS))
