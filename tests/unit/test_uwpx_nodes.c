/*
 * test_uwpx_nodes: the router's FRAME_NODES answer to set_push_accounts as ingress-uwpx reads
 * it (uwpx_nodes_parse). An answer with more entries than accounts asked is refused without a
 * write past the accounts asked for (the array is followed by a guard entry that must stay
 * untouched), at the project cap (64) and below it; exact answers, missing, reordered and
 * malformed ones are told apart.
 */
#include "../../ingress/uwpx/uwpx_server.h"
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t buf[FRAME_MAX];

static void account(char *out, size_t i)
{
	snprintf(out, UWPX_ID_LEN + 1, "%064zx", i + 1);
}

static void request(struct uwpx_request *q, size_t n)
{
	memset(q, 0, sizeof *q);
	q->action = UWPX_SET_PUSH_ACCOUNTS;
	q->version = 2;
	q->naccounts = n;
	for (size_t i = 0; i < n; i++)
		account(q->accounts[i], i);
}

/* A NODES frame with entries for accounts first..first+n (in order), each stored. */
static struct frame nodes_frame(size_t n, size_t first, const char *node)
{
	struct frame_writer w;
	struct frame f;
	const char *why = NULL;
	char acc[UWPX_ID_LEN + 1];
	long len;

	frame_begin(&w, buf, FRAME_NODES, 7);
	for (size_t i = 0; i < n; i++) {
		account(acc, first + i);
		frame_put_bytes(&w, TAG_ACCOUNT, acc, UWPX_ID_LEN);
		frame_put_bytes(&w, TAG_NODE, node, strlen(node));
		frame_put_bytes(&w, TAG_SECRET, "Secret1", 7);
		frame_put_u32(&w, TAG_STATUS, STATUS_OK);
	}
	len = frame_end(&w);
	if (len < 0 || frame_parse(buf, (size_t)len, &f, &why) != 0) {
		fprintf(stderr, "test frame does not build: %s\n", why ? why : "too long");
		exit(1);
	}
	return f;
}

/* Parses into an array of exactly q->naccounts entries followed by a guard entry. */
static int parse_guarded(const struct uwpx_request *q, const struct frame *f, int *guard_intact)
{
	struct uwpx_node *arr = calloc(q->naccounts + 1, sizeof *arr), guard;
	int rc;

	memset(&arr[q->naccounts], 0x5a, sizeof *arr);
	memcpy(&guard, &arr[q->naccounts], sizeof guard);
	rc = uwpx_nodes_parse(q, f, arr);
	*guard_intact = memcmp(&guard, &arr[q->naccounts], sizeof guard) == 0;
	free(arr);
	return rc;
}

int main(void)
{
	static struct uwpx_request q;
	struct uwpx_node nodes[UWPX_ACCOUNTS_CAP];
	struct frame f;
	int intact, rc;
	size_t sizes[] = {1, 3, UWPX_ACCOUNTS_CAP};

	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t n = sizes[k];
		request(&q, n);
		f = nodes_frame(n, 0, "Node1");
		rc = parse_guarded(&q, &f, &intact);
		CHECK(rc == 0 && intact, "%zu accounts, %zu entries: accepted (%d), guard intact", n, n, rc);
		f = nodes_frame(n + 1, 0, "Node1");
		rc = parse_guarded(&q, &f, &intact);
		CHECK(rc == -1, "%zu accounts, %zu entries: refused (%d)", n, n + 1, rc);
		CHECK(intact, "%zu accounts, %zu entries: nothing written past the accounts asked", n, n + 1);
		f = nodes_frame(n + 5, 0, "Node1");
		rc = parse_guarded(&q, &f, &intact);
		CHECK(rc == -1 && intact, "%zu accounts, %zu entries: refused, guard intact", n, n + 5);
		if (n > 1) {
			f = nodes_frame(n - 1, 0, "Node1");
			CHECK(parse_guarded(&q, &f, &intact) == -1 && intact, "%zu accounts, one entry missing: refused", n);
			f = nodes_frame(n, 1, "Node1");
			CHECK(parse_guarded(&q, &f, &intact) == -1 && intact, "%zu accounts, shifted by one: refused", n);
		}
	}
	request(&q, 2);
	f = nodes_frame(2, 0, "Node1");
	CHECK(uwpx_nodes_parse(&q, &f, nodes) == 0 && nodes[0].ok == 1 && strcmp(nodes[1].node, "Node1") == 0 &&
		      strcmp(nodes[1].secret, "Secret1") == 0,
	      "exact answer: nodes and secrets kept");
	f = nodes_frame(2, 0, "bad node");
	CHECK(uwpx_nodes_parse(&q, &f, nodes) == -1, "a node outside [0-9A-Za-z]: refused");
	/* The request itself claims more accounts than any array holds. */
	q.naccounts = UWPX_ACCOUNTS_CAP + 1;
	f = nodes_frame(1, 0, "Node1");
	CHECK(uwpx_nodes_parse(&q, &f, nodes) == -1, "a request above the cap: refused");
	return test_done();
}
