# bench/: load generators and micro-benchmarks for `make bench` (never part of `make check`).
TOOLS += $(BIN)/onion_load
$(BIN)/onion_load: $(BUILD)/bench/onion_load.o $(BUILD)/pushctl/onion_client.o $(COMMON_LIB)
	$(call link,$(LIBS))
TOOLS += $(BIN)/registry_bench
$(BIN)/registry_bench: $(BUILD)/bench/registry_bench.o $(ROUTER_LIB) $(COMMON_LIB)
	$(call link,$(LIBS))
TOOLS += $(BIN)/router_load
$(BIN)/router_load: $(BUILD)/bench/router_load.o $(COMMON_LIB)
	$(call link,$(LIBS))
TOOLS += $(BIN)/sender_feed
$(BIN)/sender_feed: $(BUILD)/bench/sender_feed.o $(COMMON_LIB)
	$(call link,$(LIBS))
TOOLS += $(BIN)/floor_server
$(BIN)/floor_server: $(BUILD)/bench/floor_server.o $(INGRESS_onion_LIB) $(BCHAT_LIB) $(COMMON_LIB)
	$(call link,$(LIBS))
# The bus's own rate (cluster mode): libnats only here, and in the daemons that use the bus.
TOOLS += $(BIN)/nats_bench
$(BIN)/nats_bench: $(BUILD)/bench/nats_bench.o
	$(call link,-lnats -lpthread)
# libcurl's HTTP/2 defect that keeps apns-sender and fcm-sender on nghttp2 (docs/senders.md).
TOOLS += $(BIN)/curl_resets
$(BIN)/curl_resets: $(BUILD)/bench/curl_resets.o
	$(call link,-lcurl)
