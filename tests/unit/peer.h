/*
 * peer.h - the unit tests' glue around real peers: starting a server (a Python peer,
 * tinyproxy) and learning its port, stopping it, a free port, and running a loop until
 * something holds. One copy for the test programs that had one each (netconn, h2conn,
 * h1conn, mcp_http).
 */
#ifndef CREDBROKER_TEST_PEER_H
#define CREDBROKER_TEST_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

struct peer {
    pid_t pid;
    int port;
    int stdin_fd; /* with read_port: a Python peer exits when it reads EOF here, when we do */
};

/*
 * Starts argv (argv[0] a path, or a name looked up in PATH). stderr goes to logfile
 * (NULL: inherited). With read_port, stdout is a pipe whose first line is the peer's port
 * (p->port) and stdin a pipe kept in p->stdin_fd; without, stdout goes to logfile too.
 * Returns 0, or -1 with nothing left running.
 */
int peer_spawn(struct peer *p, char *const argv[], bool read_port, const char *logfile);
/* SIGKILL and reap (nothing of a peer's own shutdown is under test); accepts a stopped one. */
void peer_stop(struct peer *p);

/* A port nothing listens on now (the kernel's choice, then released). */
int peer_free_port(void);
/* True if something accepts connections on 127.0.0.1:port. */
bool peer_port_open(int port);

/* Runs loop until cond(arg) or ms pass; returns cond(arg). A 10 ms tick keeps UV_RUN_ONCE
 * returning: a timer's callback can meet the condition and leave nothing to wake the poll. */
bool peer_run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg, uint64_t ms);

#endif
