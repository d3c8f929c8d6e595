# bench/: load generators and micro-benchmarks for `make bench` (never part of `make check`).
TOOLS += $(BIN)/onion_load
$(BIN)/onion_load: $(BUILD)/bench/onion_load.o $(BUILD)/pushctl/onion_client.o $(COMMON_LIB)
	$(call link,$(LIBS))
