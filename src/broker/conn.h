/*
 * conn.h - one brokered connection: HTTP/1.1 from the child on a unix stream,
 * each request rebuilt and sent upstream with the key, each response streamed
 * back with the key masked (DESIGN.md section 2).
 */
#ifndef CREDBROKER_CONN_H
#define CREDBROKER_CONN_H

#include <stdint.h>

struct broker_invocation;
struct conn;

/*
 * Serves fd (the broker's end of a fresh stream pair; ownership passes in, it is
 * closed on failure). Registers it on the loop and starts reading, so the caller
 * may hand the peer end out only after this returned 0.
 */
int conn_new(struct broker_invocation *inv, int fd, struct conn **out);
/* Closes at once: cancels the upstream request, drops pending writes. */
void conn_abort(struct conn *c);
/* Frees the closed connections inv keeps for its next dials (when it is released). */
void conn_free_spares(struct broker_invocation *inv);

#endif
