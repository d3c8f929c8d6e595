# hms-sender/: Huawei Push Kit delivery; role files also go into a library for the unit tests.
HMS_SENDER_LIB_SRCS := $(filter-out hms-sender/main.c,$(wildcard hms-sender/*.c))
HMS_SENDER_LIB := $(BUILD)/libhms-sender.a
$(HMS_SENDER_LIB): $(HMS_SENDER_LIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
DAEMONS += $(BIN)/hms-sender
$(BIN)/hms-sender: $(BUILD)/hms-sender/main.o $(HMS_SENDER_LIB) $(SENDER_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) $(NATS_LIBS))
