/* What counts as stored (common/bus.c bus_stored, docs/cluster.md "Durability, stated
 * honestly"): a PubAck with a stream sequence, first copy or duplicate; not a missing PubAck,
 * and not nats-server 2.9's "duplicate" with sequence 0 for a copy it has not committed. */
#include "bus.h"
#include "testlib.h"

int main(void)
{
	jsPubAck pa = {.Stream = (char *)"PP_REQ", .Sequence = 42, .Duplicate = false};

	CHECK(bus_stored(&pa) == 1, "a PubAck with a sequence: stored");
	pa.Duplicate = true;
	CHECK(bus_stored(&pa) == 1, "a duplicate with the first copy's sequence: stored");
	pa.Sequence = 0;
	CHECK(bus_stored(&pa) == 0, "a duplicate with sequence 0 (an uncommitted proposal): not stored");
	pa.Duplicate = false;
	CHECK(bus_stored(&pa) == 0, "a PubAck without a sequence: not stored");
	CHECK(bus_stored(NULL) == 0, "no PubAck (an error or a timeout): not stored");
	return test_done();
}
