# wns-sender/: WNS delivery for UWPX; the only daemon linked with libcurl (curl_http.c).
ifneq ($(wildcard wns-sender/main.c),)
WNS_SENDER_LIB_SRCS := $(filter-out wns-sender/main.c,$(wildcard wns-sender/*.c))
WNS_SENDER_LIB := $(BUILD)/libwns-sender.a
$(WNS_SENDER_LIB): $(WNS_SENDER_LIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
DAEMONS += $(BIN)/wns-sender
$(BIN)/wns-sender: $(BUILD)/wns-sender/main.o $(WNS_SENDER_LIB) $(SENDER_LIB) $(COMMON_LIB)
	$(call link,-lcurl $(LIBS) $(NATS_LIBS))
endif
