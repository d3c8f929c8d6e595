# ingress/: three daemons sharing parsing and frame code. Every file that is not a main_*.c
# goes into libingress.a, so unit tests can link the same code the daemons run.
INGRESS_LIB_SRCS := $(filter-out ingress/main_%.c,$(wildcard ingress/*.c))
INGRESS_LIB := $(BUILD)/libingress.a
$(INGRESS_LIB): $(INGRESS_LIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
INGRESS_MAINS := $(wildcard ingress/main_*.c)
INGRESS_BINS := $(patsubst ingress/main_%.c,$(BIN)/ingress-%,$(INGRESS_MAINS))
DAEMONS += $(INGRESS_BINS)
# libmicrohttpd serves ingress-onion's HTTP (onion_http.c); the other ingresses do not link it.
# libnats: in cluster mode ingress-onion reaches the routers over NATS (docs/cluster.md).
$(BIN)/ingress-onion: LINK_EXTRA := -lmicrohttpd $(NATS_LIBS)
$(BIN)/ingress-uwpx $(BIN)/ingress-xmpp: LINK_EXTRA := $(NATS_LIBS)
$(BIN)/ingress-%: $(BUILD)/ingress/main_%.o $(INGRESS_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) $(LINK_EXTRA))
