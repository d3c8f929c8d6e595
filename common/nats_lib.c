/*
 * nats_lib: libnats through dlopen (see nats_lib.h). A table holds one pointer per function of
 * nats_api.h; each function of that list is defined here with nats.h's parameters and calls
 * through the table, loading the library the first time if nats_lib_load was not called.
 */
#include "nats_lib.h"
#include "log.h"
#include <dlfcn.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The library's soname, from the libnats.so the build found (common/build.mk). */
#ifndef NATS_SONAME
#define NATS_SONAME "libnats.so.3.4"
#endif

static struct {
#define NATS_FN(ret, name, params, args) ret(*name) params;
#define NATS_VFN(name, params, args) void(*name) params;
#include "nats_api.h"
#undef NATS_FN
#undef NATS_VFN
} T;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_rc = -1;
static char load_err[256] = "not loaded";

/* Fills T, or leaves load_rc at -1 with the reason in load_err. */
static void load(void)
{
	void *h = dlopen(NATS_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(load_err, sizeof load_err, "cannot load %s (cluster mode needs libnats): %s", NATS_SONAME,
			 dlerror());
		return;
	}
#define NATS_SYM(name)                                                                                     \
	if ((*(void **)&T.name = dlsym(h, #name)) == NULL) {                                              \
		snprintf(load_err, sizeof load_err, "%s has no %s", NATS_SONAME, #name);                  \
		dlclose(h);                                                                                \
		return;                                                                                    \
	}
#define NATS_FN(ret, name, params, args) NATS_SYM(name)
#define NATS_VFN(name, params, args) NATS_SYM(name)
#include "nats_api.h"
#undef NATS_FN
#undef NATS_VFN
#undef NATS_SYM
	load_rc = 0; /* the handle stays open for the life of the process */
}

int nats_lib_load(char *err, size_t errlen)
{
	pthread_once(&once, load);
	if (load_rc < 0)
		snprintf(err, errlen, "%s", load_err);
	return load_rc;
}

/* Before every call: the table is filled, or the process ends. */
static void need(void)
{
	pthread_once(&once, load);
	if (load_rc < 0)
		fatal("cluster: %s", load_err);
}

#define NATS_FN(ret, name, params, args)                                                                   \
	ret name params                                                                                    \
	{                                                                                                  \
		need();                                                                                    \
		return T.name args;                                                                        \
	}
#define NATS_VFN(name, params, args)                                                                       \
	void name params                                                                                   \
	{                                                                                                  \
		need();                                                                                    \
		T.name args;                                                                               \
	}
#include "nats_api.h"
#undef NATS_FN
#undef NATS_VFN
