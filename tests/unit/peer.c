/*
 * peer.c - starting and stopping the unit tests' peers, and running a loop until
 * something holds. See peer.h.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peer.h"

extern char **environ;

int peer_spawn(struct peer *p, char *const argv[], bool read_port, const char *logfile)
{
    posix_spawn_file_actions_t fa;
    int out[2] = {-1, -1}, in[2] = {-1, -1};
    char line[32] = "";
    size_t n = 0;

    memset(p, 0, sizeof(*p));
    if (read_port && (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0)) {
        if (out[0] >= 0) {
            close(out[0]);
            close(out[1]);
        }
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    if (read_port) {
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    } else if (logfile != NULL) {
        posix_spawn_file_actions_addopen(&fa, 1, logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
    }
    if (logfile != NULL)
        posix_spawn_file_actions_addopen(&fa, 2, logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (posix_spawnp(&p->pid, argv[0], &fa, NULL, argv, environ) != 0)
        p->pid = 0;
    posix_spawn_file_actions_destroy(&fa);
    if (!read_port)
        return p->pid > 0 ? 0 : -1;
    close(in[0]);
    close(out[1]);
    p->stdin_fd = in[1];
    while (p->pid > 0 && n + 1 < sizeof(line) && read(out[0], line + n, 1) == 1 &&
           line[n] != '\n')
        n++;
    close(out[0]);
    line[n] = '\0';
    p->port = (int)strtol(line, NULL, 10);
    if (p->pid > 0 && p->port > 0)
        return 0;
    peer_stop(p);
    return -1;
}

void peer_stop(struct peer *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    if (p->stdin_fd > 0)
        close(p->stdin_fd);
    memset(p, 0, sizeof(*p));
}

int peer_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

bool peer_port_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

bool peer_run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg, uint64_t ms)
{
    uv_timer_t tick;
    uint64_t end;

    uv_update_time(loop);
    end = uv_now(loop) + ms;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    while (!cond(arg) && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* the tick's close */
    return cond(arg);
}
