# ingress/: three daemons, one folder each (onion/, uwpx/, xmpp/: main.c plus its role files).
# What all three share sits in ingress/ itself: the router client (router_link*.c), built into
# libingress.a. Each daemon's role files (all but main.c) go into its own library, so unit tests
# link the same code the daemon runs, and each daemon links only its own library, libingress.a
# and the common/ libraries it needs (libbchat.a for ingress-onion alone).
INGRESS_LIB_SRCS := $(wildcard ingress/*.c)
INGRESS_LIB := $(BUILD)/libingress.a
$(INGRESS_LIB): $(INGRESS_LIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
INGRESS_NAMES := onion uwpx xmpp
# $(BUILD)/libingress-onion.a and so on.
define ingress_lib
INGRESS_$(1)_LIB := $$(BUILD)/libingress-$(1).a
$$(INGRESS_$(1)_LIB): $$(patsubst %.c,$$(BUILD)/%.o,$$(filter-out ingress/$(1)/main.c,$$(wildcard ingress/$(1)/*.c)))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && $$(AR) rcs $$@ $$^
endef
$(foreach n,$(INGRESS_NAMES),$(eval $(call ingress_lib,$(n))))
INGRESS_ROLE_LIBS := $(foreach n,$(INGRESS_NAMES),$(INGRESS_$(n)_LIB))
INGRESS_BINS := $(INGRESS_NAMES:%=$(BIN)/ingress-%)
DAEMONS += $(INGRESS_BINS)
# libmicrohttpd serves ingress-onion's HTTP (onion/onion_http.c); the other ingresses do not link it.
# libnats: in cluster mode the ingresses reach the routers over NATS (docs/cluster.md).
$(BIN)/ingress-onion: $(BUILD)/ingress/onion/main.o $(INGRESS_onion_LIB) $(INGRESS_LIB) $(BCHAT_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) -lmicrohttpd $(NATS_LIBS))
$(BIN)/ingress-uwpx: $(BUILD)/ingress/uwpx/main.o $(INGRESS_uwpx_LIB) $(INGRESS_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) $(NATS_LIBS))
$(BIN)/ingress-xmpp: $(BUILD)/ingress/xmpp/main.o $(INGRESS_xmpp_LIB) $(INGRESS_LIB) $(COMMON_LIB)
	$(call link,$(LIBS) $(NATS_LIBS))
