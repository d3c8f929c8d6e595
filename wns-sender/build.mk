# wns-sender/: main.c plus role files; role files also go into a library for the unit tests.
WNS_SENDER_LIB_SRCS := $(filter-out wns-sender/main.c,$(wildcard wns-sender/*.c))
WNS_SENDER_LIB := $(BUILD)/libwns-sender.a
$(WNS_SENDER_LIB): $(WNS_SENDER_LIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
DAEMONS += $(BIN)/wns-sender
$(BIN)/wns-sender: $(BUILD)/wns-sender/main.o $(WNS_SENDER_LIB) $(COMMON_LIB)
	$(call link,$(LIBS))
