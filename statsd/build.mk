# statsd/: main.c plus role files; role files also go into libstatsd.a for the unit tests.
STATSD_LIB_SRCS := $(filter-out statsd/main.c,$(wildcard statsd/*.c))
STATSD_LIB := $(BUILD)/libstatsd.a
$(STATSD_LIB): $(STATSD_LIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
DAEMONS += $(BIN)/statsd
$(BIN)/statsd: $(BUILD)/statsd/main.o $(STATSD_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) -lmicrohttpd $(NATS_LIBS))
