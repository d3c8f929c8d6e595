/*
 * sender_jwt: what the senders' credential code shares: a JWT (APNs provider token, Google
 * OAuth assertion) signed over header and claims built as jansson objects.
 */
#ifndef SENDER_JWT_H
#define SENDER_JWT_H
#include "jwt.h"
#include <jansson.h>

/* Signs the compact dumps of header and claims (key order kept) with key. Takes over both
 * references; either may be NULL (a failed json_pack), and then so is the result. Returns a
 * malloc'd token, or NULL. */
char *sender_jwt_sign(EVP_PKEY *key, enum jwt_alg alg, json_t *header, json_t *claims);
#endif
