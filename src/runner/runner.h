/*
 * runner.h - `credbroker runner`: the daemon an agent platform drives over a
 * WebSocket (DESIGN.md section 6). It keeps one connection to the platform
 * (reconnecting forever with backoff), sends heartbeats, runs the bash tasks it
 * is sent, each under its own broker invocation, and returns their results.
 */
#ifndef CREDBROKER_RUNNER_H
#define CREDBROKER_RUNNER_H

#include <stdbool.h>

struct runner_config;
struct broker_route;

/*
 * broker.routes with their keys loaded (cmd_runner): every task's invocation offers them
 * besides the task's own credential, and the task's environment gets envs[i]=urls[i] (the
 * route's placeholder URL). Borrowed for as long as runner_run runs.
 */
struct runner_routes {
    const struct broker_route *routes;
    const char *const *envs, *const *urls;
    size_t n;
};

/*
 * Whether this runner advertises the broker (`&broker=1`): the broker is
 * supported in this build and platform, enabled in the configuration, and the
 * local client says it can dial (the configured probe, if any, reports
 * "broker_egress": true). Runs the probe, so call it once.
 */
bool runner_probe_broker(const struct runner_config *cfg);

/*
 * Runs the runner on the default loop until SIGTERM/SIGINT: stop taking tasks,
 * wait (bounded) for running ones, cancel the rest, deliver their results if
 * connected, exit. Returns the process exit status (0 after a clean shutdown).
 * *fds_baseline receives the number of open fds once the runner is set up, before
 * any task: the leak check at exit compares against it.
 */
int runner_run(const struct runner_config *cfg, const struct runner_routes *routes,
               bool advertise_broker, int *fds_baseline);

#endif
