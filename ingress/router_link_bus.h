/*
 * router_link_bus: the cluster transport behind router_link.h (docs/cluster.md). In cluster
 * mode a link to the router publishes each request frame to pp.req.<type> on stream PP_REQ
 * instead of writing it to router.sock: notifies (of all the process's links) gathered while
 * an earlier one waits for its PubAck go as one FRAME_BATCH message (group commit); a notify is complete (OK) once
 * JetStream acknowledged its message, every other request when the router's answer arrives on
 * the link's own inbox; a publish that fails is sent again until the request's deadline,
 * which then completes it busy, as an absent router does.
 */
#ifndef ROUTER_LINK_BUS_H
#define ROUTER_LINK_BUS_H
#include "config.h"
#include "frame.h"
#include <stddef.h>
#include <stdint.h>

struct link_bus;
typedef void (*link_bus_done_fn)(void *arg, uint64_t id, uint32_t status, const struct frame *reply);

/* Once per process, before privileges drop: reads the cluster credentials. Does nothing
 * without a cluster section. 0, or -1. */
int link_bus_config(const struct config *cfg);
/* Once, after sandbox_enter and before any link is made: starts the connection (in the
 * background; libnats starts its threads, which inherit the sandbox). 0 (also without a
 * cluster section), or -1. */
int link_bus_start(void);
/* At exit, after every link was freed: closes the connection and libnats. */
void link_bus_shutdown(void);
/* 1 when a link to sock_path is to go over the bus: cluster mode and the router's socket. */
int link_bus_wanted(const char *sock_path);
/* A link's bus side; its eventfd is registered in epfd with data.ptr = tag. A request that
 * JetStream does not store is sent again (same Nats-Msg-Id) until timeout_ms after it came. */
struct link_bus *link_bus_new(int epfd, void *tag, uint32_t timeout_ms);
/* Publishes a request frame whose id is set; its completion comes through link_bus_read(). */
int link_bus_send(struct link_bus *b, const uint8_t *frame, size_t len);
/* End of the worker's turn: the notifies gathered (by every link of the process) are published
 * as one message, unless an earlier notify message still waits for its PubAck (they then leave
 * when it comes). */
void link_bus_flush(struct link_bus *b);
/* Takes the completions waiting (PubAcks, failures, the router's answers). */
void link_bus_read(struct link_bus *b, link_bus_done_fn fn, void *arg);
/* Sends again what is due; call at least every 100 ms. */
void link_bus_tick(struct link_bus *b, uint64_t now_ms);
void link_bus_free(struct link_bus *b);
#endif
