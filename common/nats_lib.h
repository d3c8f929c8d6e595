/*
 * nats_lib: libnats, loaded only when a daemon runs in cluster mode. The programs do not link
 * libnats (nor protobuf-c, which it brings); common/nats_lib.c defines every libnats function
 * they call (the list: nats_api.h) as a call through a table filled by dlopen and dlsym, so a
 * daemon in the single-machine configuration never maps them (docs/dependencies.md). Callers
 * use nats.h as before.
 */
#ifndef NATS_LIB_H
#define NATS_LIB_H
#include <stddef.h>

/* Loads libnats and finds every function of nats_api.h; call before the sandbox closes the
 * file system (bus_prepare does). Again after success: nothing. 0, or -1 with the reason in
 * err. A libnats function called before a successful load loads it then, and ends the process
 * (fatal) when it cannot. */
int nats_lib_load(char *err, size_t errlen);
#endif
