/*
 * bchat_request: the decrypted Bchat/Session push request (docs/protocol.md §6.3–§6.5):
 * v2/v3 JSON or v4 bencode → one validated action, and the exact inner reply bytes.
 */
#ifndef BCHAT_REQUEST_H
#define BCHAT_REQUEST_H
#include <stddef.h>

enum bchat_action {
	BCHAT_REGISTER,
	BCHAT_REGISTER_LEGACY_GROUPS_ONLY,
	BCHAT_UNREGISTER,
	BCHAT_SUBSCRIBE_CLOSED_GROUP,
	BCHAT_UNSUBSCRIBE_CLOSED_GROUP,
	BCHAT_NOTIFY,
};

enum bchat_device { BCHAT_DEV_IOS = 1, BCHAT_DEV_ANDROID = 2, BCHAT_DEV_HUAWEI = 3 };

/* Outcomes, each with its fixed reply (docs/protocol.md §6.5). BCHAT_SERVER_BUSY is also what a
 * parse that runs out of memory returns: the client retries later, as for a full queue. */
enum bchat_error {
	BCHAT_OK,
	BCHAT_MISSING_PARAMETER,
	BCHAT_INVALID_PARAMETER,
	BCHAT_INVALID_ENDPOINT,
	BCHAT_INVALID_REQUEST,
	BCHAT_SERVER_BUSY,
	BCHAT_NOT_REGISTERED,
	BCHAT_GROUP_NOT_FOUND,
};

#define BCHAT_MAX_GROUPS_DEFAULT 4096
#define BCHAT_OPAQUE_ID_MAX 256
#define BCHAT_TOKEN_MAX 1024

/* validate_ids: ids are id_prefix (NUL-terminated) + 64 hex digits; off: opaque, 1..256 bytes.
 * max_groups is taken literally (0 = no legacyGroupPublicKeys allowed). A NULL config means
 * {1, "bd", BCHAT_MAX_GROUPS_DEFAULT}. */
struct bchat_config {
	int validate_ids;
	char id_prefix[8];
	size_t max_groups;
};

/* One validated request. Strings are malloc'd, NUL-terminated copies of the exact bytes after
 * JSON unescaping (none contains a NUL); fields the action does not take are NULL / 0. */
struct bchat_request {
	enum bchat_action action;
	char *token;
	size_t token_len;
	char *pubkey;
	size_t pubkey_len;
	char *group; /* closedGroupPublicKey */
	size_t group_len;
	char *send_to;
	size_t send_to_len;
	char *data; /* notify data, verbatim; the caller applies max_data_len */
	size_t data_len;
	enum bchat_device device; /* register*: resolved per docs/protocol.md §2; otherwise 0 */
	char **groups;		  /* legacyGroupPublicKeys, in request order */
	size_t *group_lens;
	size_t ngroups;
};

/* v2/v3: pt is the JSON object of docs/protocol.md §6.3. out is zeroed first and left zeroed on
 * error, so bchat_request_free() is always safe. */
enum bchat_error bchat_parse_v2(const struct bchat_config *c, const unsigned char *pt, size_t len,
				struct bchat_request *out);
/* v4: pt is the bencoded list of docs/protocol.md §6.3; otherwise as bchat_parse_v2(). */
enum bchat_error bchat_parse_v4(const struct bchat_config *c, const unsigned char *pt, size_t len,
				struct bchat_request *out);
/* Frees every copy; the struct is left zeroed. */
void bchat_request_free(struct bchat_request *r);
/* docs/protocol.md §2 device resolution from the `device` value (NULL when absent or null) and the
 * token. */
/* docs/protocol.md §6.3: an id (or closed-group key) under c; a device token (1–1024 printable
 * ASCII, no space). */
int bchat_valid_id(const struct bchat_config *c, const char *s, size_t n);
int bchat_valid_token(const char *s, size_t n);
enum bchat_device bchat_resolve_device(const char *device, size_t device_len, const char *token,
				       size_t token_len);
/* Inner v2 reply JSON for the outcome, exact bytes of docs/protocol.md §6.5 (product "Bchat" or
 * "Session"; NULL means "Bchat"). malloc'd, NUL-terminated, *len excludes the NUL; NULL when out of
 * memory. */
unsigned char *bchat_reply_v2(enum bchat_error e, const char *product, size_t *len);
/* Inner v4 reply bencode for the outcome, exact bytes of docs/protocol.md §6.5; otherwise as
 * bchat_reply_v2(). */
unsigned char *bchat_reply_v4(enum bchat_error e, const char *product, size_t *len);
/* The HTTP body of a v2 reply, {"result":"<padded base64 of sealed>"}\n; malloc'd,
 * NUL-terminated, *out_len excludes the NUL; NULL when out of memory or too large. */
char *bchat_v2_http_body(const unsigned char *sealed, size_t len, size_t *out_len);
/* The endpoint name of the action ("register", …). */
const char *bchat_action_name(enum bchat_action a);
/* Short fixed text for logs ("Missing parameter", …; product-neutral). */
const char *bchat_error_str(enum bchat_error e);
#endif
