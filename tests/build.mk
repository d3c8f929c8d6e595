# tests/: unit tests (tests/unit/test_*.c, one program each, linked with every role library),
# the mock provider, and any extra fragments (tests/*/*.mk).
# The order is the dependency order (role libraries, then common/'s sender, Bchat and base
# libraries); there is no link group, so a library that reaches into a later layer fails to link.
ALL_ROLE_LIBS = $(INGRESS_ROLE_LIBS) $(INGRESS_LIB) $(ROUTER_LIB) $(STATSD_LIB) $(APNS_SENDER_LIB) $(FCM_SENDER_LIB) $(WNS_SENDER_LIB) $(HMS_SENDER_LIB) $(SENDER_LIB) $(BCHAT_LIB) $(COMMON_LIB)
TEST_LINK = $(ALL_ROLE_LIBS) $(LIBS) -lmicrohttpd -Wl$(comma)--as-needed $(NATS_LIBS) -Wl$(comma)--no-as-needed
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BIN)/tests/%,$(UNIT_SRCS))
TESTS += $(UNIT_BINS)
$(BIN)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(BUILD)/tests/unit/testlib.o $(ALL_ROLE_LIBS)
	$(call link,$(TEST_LINK))
-include $(wildcard tests/*/*.mk)
