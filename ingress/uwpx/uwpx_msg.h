/*
 * uwpx_msg: the UWPX registration protocol without transport (docs/uwpx.md): splitting
 * NUL-terminated messages out of a byte stream, parsing and validating one message in the order
 * of the error table, and building every reply (compact JSON, keys sorted byte-wise, one NUL).
 * Version 2 as today's clients send it, and version 1 as the UWPX server's README documents it:
 * set_accounts with bare JIDs (spelled bare_jid or bareJid), whose account ids are derived here
 * as the v2 client derives them, and set_channel_uri answered with version 1. Pure functions:
 * the daemon, the unit tests and the fuzzer share them.
 */
#ifndef UWPX_MSG_H
#define UWPX_MSG_H
#include "uwpx_uri.h"
#include <stddef.h>
#include <stdint.h>

#define UWPX_ID_LEN 64
#define UWPX_ACCOUNTS_CAP 64 /* the project cap; the configured max_accounts is ≤ this */
#define UWPX_NODE_MAX 64
#define UWPX_JIDS_MAX 3072   /* bytes of all bare JIDs of one version-1 set_accounts (the reply stays < 16 KiB) */
#define UWPX_JID_MAX 1023    /* bytes of one bare JID */

enum uwpx_action { UWPX_SET_CHANNEL_URI = 1, UWPX_SET_PUSH_ACCOUNTS, UWPX_REQUEST_TEST_PUSH };

/* Parse outcomes and reply kinds; UWPX_E_* are the docs/uwpx.md "Errors" rows, in order. */
enum uwpx_result {
	UWPX_OK = 0,
	UWPX_EMPTY,		/* nothing but (a BOM and) the NUL: no reply */
	UWPX_E_MALFORMED,	/* Malformed JSON. */
	UWPX_E_UNSUPPORTED,	/* Unsupported message type. */
	UWPX_E_INVALID,		/* Invalid JSON message. */
	UWPX_E_DEVICE_UNKNOWN,	/* Device id unknown. */
	UWPX_E_CHANNEL_URI,	/* Invalid channel URI. ... */
	UWPX_E_TEST_PUSH,	/* Failed to send test push. ... */
	UWPX_E_INTERNAL,	/* Internal server error... ... */
};

struct uwpx_limits {
	size_t max_accounts;	/* 1..UWPX_ACCOUNTS_CAP */
	struct uwpx_uri_rules uri;
};

struct uwpx_request {
	enum uwpx_action action;
	int version;				/* 1 or 2 */
	char device_id[UWPX_ID_LEN + 1];	/* lowercase */
	char channel_uri[UWPX_URI_MAX + 1];	/* set_channel_uri */
	size_t channel_uri_len;
	size_t naccounts;			/* set_push_accounts: distinct, first spelling kept */
	char accounts[UWPX_ACCOUNTS_CAP][UWPX_ID_LEN + 1];
	int reply_version;			/* the version replies carry; 0 until parsed (then 2) */
	/* Version-1 set_accounts (action UWPX_SET_PUSH_ACCOUNTS): each account's bare JID (in jids
	 * at jid_off, jid_len bytes) and whether it was spelled bareJid; accounts[] holds the ids
	 * derived from them. push_camel: answer push_bareJid rather than push_bare_jid. */
	int v1_accounts, push_camel;
	uint8_t camel[UWPX_ACCOUNTS_CAP];
	uint16_t jid_off[UWPX_ACCOUNTS_CAP], jid_len[UWPX_ACCOUNTS_CAP];
	char jids[UWPX_JIDS_MAX];
};

/* One account's result from the router, in request order. */
struct uwpx_node {
	int ok;				/* stored: success true */
	char node[UWPX_NODE_MAX + 1];	/* empty when not ok */
	char secret[UWPX_NODE_MAX + 1];
};

/*
 * Finds the end of the next message in buf[0..len): returns the index of its NUL (the message
 * is buf[0..index)), -1 when more input is needed, -2 when more than max bytes precede the NUL
 * (or no NUL within max + 1 bytes): the message is over the cap.
 */
long uwpx_frame_end(const uint8_t *buf, size_t len, size_t max);

/* Parses one message (the bytes before its NUL). UWPX_OK fills *req; UWPX_EMPTY means ignore;
 * anything else is the error to answer. */
enum uwpx_result uwpx_parse(const struct uwpx_limits *lim, const uint8_t *msg, size_t len, struct uwpx_request *req);

/* The exact docs/uwpx.md "Errors" string for an error, or NULL for UWPX_OK/UWPX_EMPTY. */
const char *uwpx_error_string(enum uwpx_result r);

/* Builds a plain reply: success for UWPX_OK, else the error. Returns a malloc'd buffer holding
 * the JSON and its NUL, with *len counting both; NULL when out of memory. Version 2. */
char *uwpx_reply(enum uwpx_result r, size_t *len);
/* The same, in the version the request is answered with (req->reply_version; 2 when unset). */
char *uwpx_reply_to(const struct uwpx_request *req, enum uwpx_result r, size_t *len);
/* The account id a version-2 client computes: lowercase hex SHA-256 of the device id (as given:
 * lowercase hex) followed by the bare JID, no separator. out: 65 bytes. */
void uwpx_account_id(const char *device_id, const char *jid, size_t jid_len, char *out);
/* Builds the set_push_accounts success reply (version 2: account_id, node, secret, success),
 * or for a version-1 set_accounts the version-1 reply (bare_jid or bareJid, node, secret, in
 * the request's spelling; push_bare_jid or push_bareJid); NULL when out of memory or when
 * push_bare_jid or a node/secret is not valid UTF-8. */
char *uwpx_reply_accounts(const struct uwpx_request *req, const struct uwpx_node *nodes, const char *push_bare_jid,
			  size_t *len);
/* The action's name as the client spells it. */
const char *uwpx_action_name(enum uwpx_action a);
#endif
