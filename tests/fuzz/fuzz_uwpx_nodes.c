/*
 * fuzz_uwpx_nodes: the router's FRAME_NODES answer as ingress-uwpx reads it (uwpx_nodes_parse in
 * ingress/uwpx/uwpx_server.c), the path of a nodes reply with more entries than accounts asked. The
 * input is one byte, the number of accounts the request asked for (0..64), then the frame's
 * bytes. The request's accounts are the frame's own first ACCOUNT values that a request could
 * carry (64 hex digits), so
 * matching answers are reached as easily as mismatched ones; the answer is parsed into an array
 * of exactly that many entries on the heap, so a write past it is an ASan report. What a
 * successful parse promises is checked, and the accounts reply is built from it.
 */
#include "frame.h"
#include "../../ingress/uwpx/uwpx_msg.h"
#include "../../ingress/uwpx/uwpx_server.h"
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct uwpx_request q;
	struct uwpx_node *nodes;
	struct frame f;
	struct frame_field fl;
	const char *why = NULL;
	size_t want, pos = 0, len = 0;
	char *reply;

	if (size < 1)
		return 0;
	want = data[0] % (UWPX_ACCOUNTS_CAP + 1);
	if (frame_parse(data + 1, size - 1, &f, &why) != 0)
		return 0;
	memset(&q, 0, sizeof q);
	q.action = UWPX_SET_PUSH_ACCOUNTS;
	q.version = 2;
	memset(q.device_id, 'a', UWPX_ID_LEN);
	while (q.naccounts < want && frame_next(&f, &pos, &fl) == 0) {
		size_t k = 0;
		if (fl.tag != TAG_ACCOUNT || fl.len != UWPX_ID_LEN)
			continue;
		while (k < UWPX_ID_LEN && is_hex((char)fl.val[k])) /* what uwpx_parse lets through */
			k++;
		if (k < UWPX_ID_LEN)
			continue;
		memcpy(q.accounts[q.naccounts], fl.val, UWPX_ID_LEN);
		q.accounts[q.naccounts][UWPX_ID_LEN] = '\0';
		q.naccounts++;
	}
	/* Exactly the entries asked for (one when none, as malloc(0) may return NULL). */
	nodes = malloc((q.naccounts ? q.naccounts : 1) * sizeof *nodes);
	CHECK(nodes != NULL);
	if (uwpx_nodes_parse(&q, &f, nodes) == 0) {
		for (size_t i = 0; i < q.naccounts; i++) {
			CHECK(nodes[i].ok == 0 || nodes[i].ok == 1);
			CHECK(strlen(nodes[i].node) <= UWPX_NODE_MAX && strlen(nodes[i].secret) <= UWPX_NODE_MAX);
			CHECK(nodes[i].ok ? nodes[i].node[0] != '\0' && nodes[i].secret[0] != '\0'
					  : nodes[i].node[0] == '\0' && nodes[i].secret[0] == '\0');
		}
		reply = uwpx_reply_accounts(&q, nodes, "push.example.test", &len);
		CHECK(reply != NULL && len >= 2 && reply[len - 1] == '\0' && strlen(reply) == len - 1);
		free(reply);
	}
	free(nodes);
	return 0;
}
