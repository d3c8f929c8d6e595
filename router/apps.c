/*
 * apps: which app a job, a registration and a sender instance belong to (docs/config.md, section
 * apps). A platform's first app in `apps` (or "default" when it has none) is its default app:
 * stored as the empty name, so registrations and jobs written before they carried an app belong
 * to it. Each (platform, app) has its own ready queue, its lane: lane = platform for a default
 * app, PLATFORMS + k for the k-th other app of the configuration, so a job is handed only to an
 * instance of its own app.
 */
#include "router.h"
#include <string.h>

const char *router_platform_conf(uint32_t platform)
{
	static const char *const names[] = {"", "apns", "fcm", "hms", "wns"};
	return platform > 0 && platform < sizeof names / sizeof names[0] ? names[platform] : NULL;
}

/* 1 when app (len bytes) names the platform's default app: empty, or its name. */
static int is_default(const struct config *c, const char *conf, const char *app, size_t len)
{
	const char *d = config_app_of(c, conf);
	return len == 0 || (strlen(d) == len && memcmp(d, app, len) == 0);
}

int router_lane(const struct router *r, uint32_t platform, const char *app, size_t len)
{
	const struct config *c = r->cfg;
	const char *conf = router_platform_conf(platform);
	int k = 0;

	if (conf == NULL || platform >= PLATFORMS)
		return -1;
	if (is_default(c, conf, app, len))
		return (int)platform;
	for (size_t i = 0; i < c->napps; i++) {
		size_t first = 0;
		while (strcmp(c->apps[first].platform, c->apps[i].platform) != 0)
			first++;
		if (first == i)
			continue; /* a platform's first app: its default lane */
		if (strcmp(c->apps[i].platform, conf) == 0 && strlen(c->apps[i].name) == len &&
		    memcmp(c->apps[i].name, app, len) == 0)
			return PLATFORMS + k;
		k++;
	}
	return -1;
}

int router_app_norm(const struct router *r, uint32_t platform, const char *app, size_t len, const char **out,
		    size_t *out_len)
{
	const char *conf = router_platform_conf(platform);

	if (conf == NULL)
		return -1;
	if (is_default(r->cfg, conf, app, len)) {
		*out = "";
		*out_len = 0;
		return 0;
	}
	if (!config_app_has(r->cfg, conf, app, len))
		return -1;
	*out = app;
	*out_len = len;
	return 0;
}

void router_wns_app(const struct router *r, const char **app, size_t *len)
{
	const char *a = r->cfg->uwpx.app;
	if (router_app_norm(r, PLATFORM_WNS, a, strlen(a), app, len) < 0) { /* checked at load */
		*app = "";
		*len = 0;
	}
}

int router_appset(const struct router *r, const struct frame *f, struct appset *s)
{
	static const uint16_t tags[PLATFORMS] = {0, TAG_APP_IOS, TAG_APP_ANDROID, TAG_APP_HUAWEI, 0};
	memset(s, 0, sizeof *s);
	for (uint32_t p = 1; p < PLATFORMS; p++) {
		struct frame_field fl;
		s->app[p] = "";
		if (tags[p] == 0 || frame_get(f, tags[p], &fl) < 0)
			continue;
		if (router_app_norm(r, p, (const char *)fl.val, fl.len, &s->app[p], &s->len[p]) < 0)
			return -1;
	}
	return 0;
}

int appset_has(const struct appset *s, uint32_t device, const char *app, size_t len)
{
	if (device == 0 || device >= PLATFORMS)
		return 0;
	return s->len[device] == len && memcmp(s->app[device], app, len) == 0;
}
