# apns-sender/: main.c plus role files; role files also go into a library for the unit tests.
APNS_SENDER_LIB_SRCS := $(filter-out apns-sender/main.c,$(wildcard apns-sender/*.c))
APNS_SENDER_LIB := $(BUILD)/libapns-sender.a
$(APNS_SENDER_LIB): $(APNS_SENDER_LIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
DAEMONS += $(BIN)/apns-sender
$(BIN)/apns-sender: $(BUILD)/apns-sender/main.o $(APNS_SENDER_LIB) $(SENDER_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) $(NATS_LIBS))
