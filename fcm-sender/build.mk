# fcm-sender/: main.c plus role files; role files also go into a library for the unit tests.
FCM_SENDER_LIB_SRCS := $(filter-out fcm-sender/main.c,$(wildcard fcm-sender/*.c))
FCM_SENDER_LIB := $(BUILD)/libfcm-sender.a
$(FCM_SENDER_LIB): $(FCM_SENDER_LIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
DAEMONS += $(BIN)/fcm-sender
$(BIN)/fcm-sender: $(BUILD)/fcm-sender/main.o $(FCM_SENDER_LIB) $(SENDER_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) $(NATS_LIBS))
