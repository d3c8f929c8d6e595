# tests/mock-provider: mock-provider, a loopback HTTP/2 (+HTTP/1.1) TLS stand-in for APNs,
# FCM (with its OAuth token endpoint) and WNS (README.md), and its end-to-end self-test.
MOCK_SRCS := $(wildcard tests/mock-provider/*.c)
TOOLS += $(BIN)/mock-provider
TESTS += tests/mock-provider/selftest.sh
$(BIN)/mock-provider: $(MOCK_SRCS:%.c=$(BUILD)/%.o)
	$(call link,-lnghttp2 -lssl -lcrypto -ljansson)
