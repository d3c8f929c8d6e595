/* stats_date: the statistics date format of /get_statistics_data and pushctl stats,
 * "YYYY-mm-dd HH:MM:SS" in local time (docs/protocol.md §6.7). */
#ifndef STATS_DATE_H
#define STATS_DATE_H
#include <stddef.h>
#include <stdint.h>

/* "YYYY-mm-dd HH:MM:SS" or "YYYY-mm-dd" → seconds since the epoch; -1 when unparsable. */
int stats_date_parse(const char *s, uint64_t *out);
/* Seconds → "YYYY-mm-dd HH:MM:SS" (out: at least 20 bytes). */
void stats_date_format(char *out, size_t n, uint64_t t);
#endif
