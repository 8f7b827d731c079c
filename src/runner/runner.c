/*
 * runner.c - the runner daemon. See runner.h.
 *
 * One event loop carries everything: the WebSocket to the platform, every
 * task's command and pipes, every task's broker invocation and the shared
 * upstream pool. Results of tasks that finish while the link is down wait in a
 * bounded queue (oldest dropped first, with a warning) and go out after the
 * reconnect; streamed output is best effort and never queued.
 *
 * This file is the daemon itself: the link to the platform, the results it sends,
 * shutdown and start. The tasks it runs are runner_task.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "credbroker_config.h"

#include "broker.h"
#include "buf.h"
#include "config.h"
#include "env.h"
#include "err.h"
#include "harden.h"
#include "fileop.h"
#include "netguard.h"
#include "outspill.h"
#include "isolate.h"
#include "log.h"
#include "mcp_pool.h"
#include "proto.h"
#include "runner.h"
#include "runner_internal.h"
#include "secret.h"
#include "wspath.h"
#include "task.h"
#include "webproxy.h"
#include "ws.h"

#define HEARTBEAT_MS (30 * 1000)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define PROBE_TIMEOUT_MS 10000
#define RUNNER_FDS_NEEDED 64 /* free fds at start: the loop, the platform link, first tasks */
/* What a task.result's envelope takes beside its result object (ids, names, error text). */
#define RESULT_ENVELOPE_RESERVE (16 * 1024)

/* A result kept while the link is down (the runner's queue, oldest first). */
struct queued_result {
    STAILQ_ENTRY(queued_result) link;
    char *text;
};

static void runner__connect(struct runner *r);

/* ---- sending ---- */

static void runner__queue(struct runner *r, char *text)
{
    struct queued_result *q = calloc(1, sizeof(*q));

    if (q == NULL) {
        log_error("out of memory: a task result is lost");
        free(text);
        return;
    }
    q->text = text;
    STAILQ_INSERT_TAIL(&r->queue, q, link);
    r->nqueued++;
    while (r->nqueued > r->cfg->tasks.result_queue && !STAILQ_EMPTY(&r->queue)) {
        struct queued_result *old = STAILQ_FIRST(&r->queue);

        STAILQ_REMOVE_HEAD(&r->queue, link);
        r->nqueued--;
        log_warn("result queue full (%zu): dropping the oldest undelivered task result",
                 r->cfg->tasks.result_queue);
        free(old->text);
        free(old);
    }
}

void runner__send_result(struct runner *r, char *text)
{
    if (text == NULL) {
        log_error("out of memory: a task result is lost");
        return;
    }
    if (r->connected && ws_send_text(r->ws, text, strlen(text)) == 0) {
        free(text);
        return;
    }
    runner__queue(r, text);
}

static void runner__flush_queue(struct runner *r)
{
    while (r->connected && !STAILQ_EMPTY(&r->queue)) {
        struct queued_result *q = STAILQ_FIRST(&r->queue);

        if (ws_send_text(r->ws, q->text, strlen(q->text)) != 0)
            return;
        STAILQ_REMOVE_HEAD(&r->queue, link);
        r->nqueued--;
        free(q->text);
        free(q);
    }
}

static void runner__send_heartbeat(struct runner *r)
{
    struct proto_heartbeat hb = {
        .worknode_id = r->worknode_id != NULL ? r->worknode_id : "",
        .name = r->cfg->name,
        .version = CREDBROKER_VERSION,
        .labels = r->labels,
        .environment = r->environment,
    };
    char *text = proto_encode_heartbeat(&hb);

    if (text != NULL && r->connected && ws_send_text(r->ws, text, strlen(text)) != 0)
        log_warn("cannot queue a heartbeat");
    free(text);
}

static void on_heartbeat(uv_timer_t *t)
{
    runner__send_heartbeat(t->data);
}

/* ---- the platform link ---- */

static void on_ws_open(struct ws *ws, void *data)
{
    struct runner *r = data;

    r->connected = true;
    r->attempt = 0;
    log_info("connected to the platform");
    runner__send_heartbeat(r);
    uv_timer_start(&r->heartbeat, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);
    runner__flush_queue(r);
}

static void on_ws_message(struct ws *ws, uint8_t *msg, size_t len, bool binary, void *data)
{
    struct runner *r = data;
    struct proto_in m;
    char err[256];
    struct running_task *rt;

    memset(&m, 0, sizeof(m));
    /* proto_decode wipes msg: it may carry a credential. */
    if (proto_decode((char *)msg, len, &m, err, sizeof(err)) != 0) {
        /* A task whose request is bad (a credential that could inject, say) still gets
         * an answer, so the platform does not wait for it forever. */
        if (m.type == PROTO_TASK_REQUEST && m.task_id != NULL)
            runner__reply_failure(r, &m, err);
        else if (m.type == PROTO_MCP_CALL && m.call_id != NULL)
            runner__reply_mcp_failure(r, m.call_id, err);
        else
            log_warn("ignoring a malformed message from the platform: %s", err);
        proto_in_free(&m);
        return;
    }
    switch (m.type) {
    case PROTO_WELCOME:
        free(r->worknode_id);
        r->worknode_id = m.worknode_id != NULL ? strdup(m.worknode_id) : NULL;
        log_info("welcome: worknode %.100s", r->worknode_id != NULL ? r->worknode_id : "?");
        runner__send_heartbeat(r); /* now with the worknode_id */
        break;
    case PROTO_TASK_REQUEST:
        runner__on_task_request(r, &m);
        break;
    case PROTO_MCP_CALL:
        runner__on_mcp_call(r, &m);
        break;
    case PROTO_TASK_CANCEL:
        if (m.task_id != NULL && (rt = runner__find_task(r, m.task_id)) != NULL) {
            log_kv(LOG_LEVEL_INFO, runner__task_fields(rt), "task cancelled by the platform");
            runner__cancel_task(rt);
        } else {
            log_info("cancel for an unknown task %.100s ignored", m.task_id ? m.task_id : "?");
        }
        break;
    default:
        log_info("ignoring a message of unknown type '%.64s'", m.type_name);
        break;
    }
    proto_in_free(&m);
}

static void on_reconnect_timer(uv_timer_t *t)
{
    runner__connect(t->data);
}

static void on_ws_close(struct ws *ws, int http_status, int close_code, const char *reason,
                        void *data)
{
    struct runner *r = data;
    uint64_t delay, base;
    unsigned char rnd[2];

    r->connected = false;
    uv_timer_stop(&r->heartbeat);
    ws_free(ws);
    r->ws = NULL;
    if (http_status == 401 || http_status == 403)
        log_error("the platform refused this runner's token (HTTP %d)", http_status);
    else if (http_status != 0)
        log_warn("the platform answered HTTP %d instead of a WebSocket", http_status);
    else
        log_warn("disconnected from the platform (close code %d): %.200s", close_code, reason);
    if (r->shutting_down) {
        if (r->ntasks == 0)
            runner__stop(r);
        return; /* results of the last tasks stay queued: nowhere to send them */
    }
    /* Exponential backoff with jitter, 1 s to 5 min, forever. */
    base = BACKOFF_MIN_MS << (r->attempt < 9 ? r->attempt : 9);
    if (base > BACKOFF_MAX_MS)
        base = BACKOFF_MAX_MS;
    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd[0] = rnd[1] = 0x80;
    delay = base / 2 + (base / 2) * ((unsigned)rnd[0] << 8 | rnd[1]) / 65535;
    r->attempt++;
    log_info("reconnecting in %.1f s", (double)delay / 1000.0);
    uv_timer_start(&r->reconnect, on_reconnect_timer, delay, 0);
}

static const struct ws_callbacks ws_callbacks = {
    .on_open = on_ws_open,
    .on_message = on_ws_message,
    .on_close = on_ws_close,
};

/* Appends s percent-encoded (RFC 3986 unreserved kept) to b. */
static int put_urlencoded(struct buf *b, const uint8_t *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    int r = 0;

    for (size_t i = 0; i < len && r == 0; i++) {
        uint8_t c = s[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            r = buf_put(b, &c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};

            r = buf_put(b, e, 3);
        }
    }
    return r;
}

static void runner__connect(struct runner *r)
{
    const struct runner_config *cfg = r->cfg;
    struct buf *url = buf_new(16 * 1024, BUF_WIPE); /* it carries the token */
    struct ws_options o;
    int rc;

    if (url == NULL || buf_put_str(url, cfg->api_url) != 0 ||
        buf_put_str(url, strchr(cfg->api_url, '?') != NULL ? "&token=" : "?token=") != 0 ||
        put_urlencoded(url, secret_data(cfg->api_key), secret_len(cfg->api_key)) != 0 ||
        (r->advertise_broker && buf_put_str(url, "&broker=1") != 0) || buf_cstr(url) == NULL) {
        buf_free(url);
        log_error("out of memory building the platform URL");
        uv_timer_start(&r->reconnect, on_reconnect_timer, BACKOFF_MAX_MS, 0);
        return;
    }
    memset(&o, 0, sizeof(o));
    o.url = buf_cstr(url);
    o.cacert = cfg->broker.cacert != NULL && cfg->broker.cacert[0] ? cfg->broker.cacert : NULL;
    o.connect_timeout_ms = 10000;
    o.ping_interval_ms = 20000;
    o.read_timeout_ms = 60000;
    o.max_message = 64u * 1024 * 1024;
    rc = ws_connect(r->loop, &o, &ws_callbacks, r, &r->ws);
    buf_free(url);
    if (rc != 0) {
        log_warn_r(rc, "cannot connect to the platform");
        r->ws = NULL;
        r->attempt++;
        uv_timer_start(&r->reconnect, on_reconnect_timer,
                       BACKOFF_MIN_MS << (r->attempt < 8 ? r->attempt : 8), 0);
    }
}

/* ---- shutdown ---- */

static void close_noop(uv_handle_t *h)
{
}

void runner__stop(struct runner *r)
{
    if (r->stopped)
        return;
    r->stopped = true;
    if (r->ws != NULL && r->connected) {
        /* Results are queued ahead of the close frame; on_ws_close comes back here. */
        r->stopped = false;
        r->connected = false;
        ws_close(r->ws, 1001, "runner shutting down");
        return;
    }
    if (r->ws != NULL) {
        ws_free(r->ws);
        r->ws = NULL;
    }
    uv_timer_stop(&r->heartbeat);
    uv_timer_stop(&r->reconnect);
    uv_timer_stop(&r->shutdown);
    uv_timer_stop(&r->idle_trim);
    uv_close((uv_handle_t *)&r->heartbeat, close_noop);
    uv_close((uv_handle_t *)&r->idle_trim, close_noop);
    uv_close((uv_handle_t *)&r->reconnect, close_noop);
    uv_close((uv_handle_t *)&r->shutdown, close_noop);
    uv_close((uv_handle_t *)&r->sigterm, close_noop);
    uv_close((uv_handle_t *)&r->sigint, close_noop);
    uv_close((uv_handle_t *)&r->sighup, close_noop);
    /* Closing the handles restored the default actions: a second SIGTERM during the last
     * moments of a clean shutdown must not kill us. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    broker_close(r->broker);
    r->broker = NULL;
    outspill_close(&r->spill);
    /* Its stdio servers are stopped and reaped before the loop ends (mcp_stdio.h). */
    mcp_pool_close(r->mcp);
    r->mcp = NULL;
    log_info("runner stopped");
}

static void on_shutdown_deadline(uv_timer_t *t)
{
    struct runner *r = t->data;
    struct running_task *rt;

    log_warn("shutdown: %u task(s) still running after tasks.shutdown_grace (%llu ms): "
             "cancelling them", r->ntasks, (unsigned long long)r->cfg->tasks.shutdown_grace_ms);
    LIST_FOREACH(rt, &r->tasks, link)
        runner__cancel_task(rt);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct runner *r = h->data;

    if (r->shutting_down)
        return;
    r->shutting_down = true;
    uv_timer_stop(&r->reconnect);
    log_info("%s: no new tasks; waiting for %u running task(s)", strsignal(signum), r->ntasks);
    if (r->ntasks == 0) {
        runner__stop(r);
        return;
    }
    uv_timer_start(&r->shutdown, on_shutdown_deadline, r->cfg->tasks.shutdown_grace_ms, 0);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    struct runner *r = h->data;
    int rc = log_reopen();

    if (rc != 0) {
        log_warn_r(rc, "SIGHUP: cannot reopen the log file");
        return;
    }
    log_info("SIGHUP: log file reopened");
    /* Tasks are kept from the new file too (the old one stays covered where it went until
     * now: a task started before this still had it covered). */
    if (r->isolate && r->cfg->log_file != NULL && r->cfg->log_file[0] != '\0' &&
        (rc = isolate_secrets_refresh(&r->secrets, r->cfg->log_file)) != 0)
        log_warn_r(rc, "SIGHUP: cannot open the new log file to hide it from tasks");
}

/* ---- start ---- */

/* Opens one path the commands must not read (isolate.h); one that cannot be opened, or
 * names nothing, stops the runner. */
static int runner__add_secret(struct runner *r, const char *path, bool follows)
{
    int rc = isolate_secrets_add(&r->secrets, path, follows);

    if (rc != 0)
        log_error("secret path %.200s: %s%s", path, err_str(rc),
                  rc == -ENOENT ? " (what is not there cannot be hidden, and may have been "
                                  "moved: restore it or remove it from broker.secret_paths)"
                                : "");
    return rc;
}

/* Runs the probe command and looks for "broker_egress": true in its JSON output. */
static bool run_probe(const char *command)
{
    char out[64 * 1024];
    size_t len = 0;
    int p[2], status;
    pid_t pid;
    json_t *j;
    bool ok;

    if (pipe2(p, O_CLOEXEC) != 0)
        return false;
    if ((pid = fork()) < 0) {
        close(p[0]);
        close(p[1]);
        return false;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);

        dup2(devnull, 0);
        dup2(p[1], 1);
        dup2(devnull, 2);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        ssize_t n;

        if (poll(&pf, 1, PROBE_TIMEOUT_MS) <= 0)
            break;
        n = read(p[0], out + len, sizeof(out) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(out) - 1)
            break;
    }
    close(p[0]);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    out[len] = '\0';
    j = json_loads(out, 0, NULL);
    ok = json_is_true(json_object_get(j, "broker_egress"));
    json_decref(j);
    return ok;
}

bool runner_probe_broker(const struct runner_config *cfg)
{
    if (!broker_supported() || !cfg->broker.enabled)
        return false;
    if (cfg->broker.probe == NULL || cfg->broker.probe[0] == '\0')
        return true; /* no probe configured: supported */
    if (!run_probe(cfg->broker.probe)) {
        log_warn("broker probe '%.200s' did not report \"broker_egress\": true: "
                 "not advertising the broker",
                 cfg->broker.probe);
        return false;
    }
    return true;
}

static json_t *labels_json(const struct runner_config *cfg)
{
    json_t *o = json_object();

    for (size_t i = 0; o != NULL && i < cfg->nlabels; i++)
        json_object_set_new(o, cfg->label_keys[i], json_string(cfg->label_values[i]));
    return o;
}

static json_t *environment_json(const struct runner *r)
{
    struct utsname u;
    char host[256] = "";
    json_t *o;

    uname(&u);
    gethostname(host, sizeof(host) - 1);
    o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:s, s:I}", "os", "linux", "arch", u.machine,
                  "hostname", host, "kernel", u.release, "broker_supported", broker_supported(),
                  "broker", r->advertise_broker, "isolation", r->isolate ? "namespaces" : "none",
                  "secret_arena", secret_arena_backing_name(), "pid", (json_int_t)getpid());
    return o;
}

static const char *runner__getenv(const char *name)
{
    return getenv(name);
}

static int runner__init(struct runner *r, const struct runner_config *cfg,
                        const struct runner_routes *routes, bool advertise)
{
    extern char **environ;
    struct broker_options bo;
    char err[256];
    int rc;

    memset(r, 0, sizeof(*r));
    STAILQ_INIT(&r->queue); /* a zeroed head is not an empty queue: its last pointer is unset */
    /* libuv aborts the process when it cannot make its loop's pipes: room first. */
    if ((rc = harden_fd_headroom(RUNNER_FDS_NEEDED)) != 0) {
        log_error("too few file descriptors allowed (ulimit -n): at least %d more are needed",
                  RUNNER_FDS_NEEDED);
        return rc;
    }
    if ((r->loop = uv_default_loop()) == NULL) {
        log_error("cannot start the event loop (out of file descriptors or memory)");
        return ERR_NOMEM;
    }
    r->cfg = cfg;
    r->advertise_broker = advertise;
    r->workspace.fd = -1;
    /* The file operations resolve every path against this descriptor (wspath.h). */
    if ((rc = wspath_root_open(&r->workspace, cfg->workspace_root)) != 0) {
        log_error("workspace_root %.200s: %s", cfg->workspace_root, err_str(rc));
        return rc;
    }
    /* Spill files are pruned now and hourly (RUNNER-OPS.md 4). */
    if ((rc = outspill_init(&r->spill, r->loop, &r->workspace, cfg->ops.spill_max_age_ms,
                            cfg->ops.spill_max_total_bytes)) != 0)
        return rc;
    /* A result never exceeds tasks.max_message_bytes (2.7): each op shrinks to fit. */
    r->fileop_limits.max_result_bytes = cfg->tasks.max_message_bytes - RESULT_ENVELOPE_RESERVE;
    /* read's content is base64: 4 bytes for every 3 read. */
    r->fileop_limits.read_max_bytes = (r->fileop_limits.max_result_bytes - 1024) / 4 * 3;
    if (cfg->ops.read_max_bytes < r->fileop_limits.read_max_bytes)
        r->fileop_limits.read_max_bytes = cfg->ops.read_max_bytes;
    r->fileop_limits.list_max_entries = cfg->ops.list_max_entries;
    r->fileop_limits.glob_max_matches = cfg->ops.glob_max_matches;
    r->fileop_limits.grep_max_matches = cfg->ops.grep_max_matches;
    r->fileop_limits.skill.max_file_bytes = cfg->ops.skill_max_file_bytes;
    r->fileop_limits.skill.max_total_bytes = cfg->ops.skill_max_total_bytes;
    r->fileop_limits.skill.max_entries = cfg->ops.skill_max_entries;
    r->fileop_limits.skill.max_ratio = cfg->ops.skill_max_ratio;
    r->fileop_limits.spill = &r->spill;
    if ((rc = netguard_init(&r->webfetch_guard, cfg->webfetch.allow_private,
                            cfg->webfetch.allow_hosts, cfg->webfetch.nallow_hosts, err,
                            sizeof(err))) != 0) {
        log_error("%s", err);
        return rc;
    }
    if ((rc = webproxy_init(&r->webfetch_proxy, runner__getenv)) != 0)
        return rc;
    r->fileop_limits.webfetch_guard = &r->webfetch_guard;
    r->fileop_limits.webfetch_proxy = &r->webfetch_proxy;
    r->fileop_limits.webfetch_cacert =
        cfg->webfetch.cacert != NULL && cfg->webfetch.cacert[0] ? cfg->webfetch.cacert : NULL;
    /* The runner's own secrets never reach a command. */
    if ((r->child_env = env_new_for_command(environ, (const char *const *)cfg->broker.env_deny,
                                            cfg->broker.nenv_deny)) == NULL)
        return ERR_NOMEM;
    /* Every inherited FLASHDUTY_* (the newer Go runner's scrubFlashdutySecrets); a task's
     * own come back as the broker or the legacy path sets them. */
    env_deny(r->child_env, "FLASHDUTY_*");
    if (cfg->api_key != NULL)
        env_deny_secret(r->child_env, cfg->api_key, "the runner's token");
    if (broker_supported() && cfg->broker.enabled) {
        memset(&bo, 0, sizeof(bo));
        bo.cacert = cfg->broker.cacert != NULL && cfg->broker.cacert[0] ? cfg->broker.cacert : NULL;
        bo.connect_timeout_ms = cfg->broker.connect_timeout_ms;
        if ((rc = broker_new(r->loop, &bo, &r->broker)) != 0)
            return rc;
        broker_limits_default(&r->broker_template.limits);
        r->broker_template.limits.max_conns = cfg->broker.max_conns;
        r->broker_template.limits.max_dials_per_sec = cfg->broker.dial_rate;
        r->broker_template.limits.dial_wait_ms = cfg->broker.dial_wait_ms;
        r->broker_template.limits.max_body = cfg->broker.max_body;
        r->broker_template.limits.head_timeout_ms = cfg->broker.head_timeout_ms;
        r->broker_template.limits.idle_timeout_ms = cfg->broker.idle_timeout_ms;
        r->broker_template.limits.response_head_timeout_ms = cfg->broker.response_timeout_ms;
        r->broker_template.limits.stall_timeout_ms = cfg->broker.stall_timeout_ms;
        r->broker_template.scrub = true;
        if (inject_parse(cfg->broker.inject, &r->broker_template.inject) != 0)
            return ERR_INVALID;
        /* The host's routes, for every task (each invocation copies what it keeps). */
        if (routes != NULL && routes->n > 0) {
            r->routes = routes;
            r->broker_template.routes = routes->routes;
            r->broker_template.nroutes = routes->n;
        }
    } else if (routes != NULL && routes->n > 0) {
        log_error("broker.routes needs the broker (broker.enabled, on Linux)");
        return ERR_UNSUPPORTED;
    }
    /* Isolation: the runner's config file, the configured secret paths and the runner's log
     * are hidden from every command. */
    if (cfg->broker.isolation != ISOLATION_OFF && isolate_available()) {
        r->isolate = true;
        if (cfg->config_path != NULL && (rc = runner__add_secret(r, cfg->config_path, false)) != 0)
            return rc;
        for (size_t i = 0; i < cfg->broker.nsecret_paths; i++) {
            if ((rc = runner__add_secret(r, cfg->broker.secret_paths[i], false)) != 0)
                return rc;
        }
        if (cfg->log_file != NULL && cfg->log_file[0] != '\0' &&
            (rc = runner__add_secret(r, cfg->log_file, true)) != 0)
            return rc;
    } else if (cfg->broker.isolation == ISOLATION_REQUIRED) {
        log_error("broker.isolation is required, but this host does not allow user namespaces");
        return ERR_UNSUPPORTED;
    } else {
        log_warn("isolation unavailable or off: commands run without namespaces and can read "
                 "files of the runner's user (its config file included)");
    }
    /* MCP stdio servers run like bash tasks: the same environment, workspace, isolation
     * and permission rules (RUNNER-OPS.md 9.3). */
    {
        struct mcp_pool_options mo = {
            .base_env = r->child_env,
            .workspace = r->workspace.real,
            .secrets = r->isolate ? &r->secrets : NULL,
            .rules = cfg->permission,
            .proxy = &r->webfetch_proxy,
        };

        if ((rc = mcp_pool_new(r->loop, &mo, &r->mcp)) != 0)
            return rc;
        r->fileop_limits.mcp = r->mcp;
    }
    r->labels = labels_json(cfg);
    r->environment = environment_json(r);
    if (r->labels == NULL || r->environment == NULL)
        return ERR_NOMEM;
    uv_timer_init(r->loop, &r->heartbeat);
    uv_timer_init(r->loop, &r->reconnect);
    uv_timer_init(r->loop, &r->shutdown);
    uv_timer_init(r->loop, &r->idle_trim);
    r->idle_trim.data = r;
    uv_unref((uv_handle_t *)&r->idle_trim); /* never what keeps the loop running */
    r->heartbeat.data = r->reconnect.data = r->shutdown.data = r;
    uv_signal_init(r->loop, &r->sigterm);
    uv_signal_init(r->loop, &r->sigint);
    uv_signal_init(r->loop, &r->sighup);
    r->sigterm.data = r->sigint.data = r->sighup.data = r;
    uv_signal_start(&r->sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&r->sigint, on_stop_signal, SIGINT);
    uv_signal_start(&r->sighup, on_sighup, SIGHUP);
    return 0;
}

int runner_run(const struct runner_config *cfg, const struct runner_routes *routes,
               bool advertise_broker, int *fds_baseline)
{
    struct runner r;
    int rc;

    proto_init();
    if ((rc = runner__init(&r, cfg, routes, advertise_broker)) != 0) {
        log_error_r(rc, "cannot start the runner");
        return 1;
    }
    /* The leak check's baseline: the loop, its signal handlers and libuv's process-wide
     * fds exist now; no task has run yet. */
    *fds_baseline = harden_count_fds();
    log_info("runner %.100s starting: broker %s", cfg->name,
             advertise_broker ? "advertised" : "not advertised (legacy path for credentials)");
    runner__connect(&r);
    uv_run(r.loop, UV_RUN_DEFAULT);
    while (!STAILQ_EMPTY(&r.queue)) {
        struct queued_result *q = STAILQ_FIRST(&r.queue);

        STAILQ_REMOVE_HEAD(&r.queue, link);
        free(q->text);
        free(q);
    }
    free(r.worknode_id);
    json_decref(r.labels);
    json_decref(r.environment);
    env_free(r.child_env);
    isolate_secrets_free(&r.secrets);
    netguard_free(&r.webfetch_guard);
    webproxy_free(&r.webfetch_proxy);
    wspath_root_close(&r.workspace);
    uv_loop_close(r.loop);
    return 0;
}
