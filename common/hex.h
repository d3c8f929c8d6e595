/* hex: hex digits, the one place that decodes them. */
#ifndef HEX_H
#define HEX_H

/* The value of a hex digit of either case, or -1. */
static inline int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The value of a lowercase hex digit, or -1 (for canonical forms). */
static inline int hex_value_lower(int c)
{
	return (c >= 'A' && c <= 'F') ? -1 : hex_value(c);
}
#endif
