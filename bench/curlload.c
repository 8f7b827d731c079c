/*
 * curlload - libcurl's multi interface making keep-alive calls by itself, with no
 * broker and no child: what the upstream library costs per request on this machine
 * (bench/run, W2 information). Driven as the broker drives it: curl_multi_socket_action
 * on an epoll loop (the broker's is libuv's). Each call gets a new easy handle with the
 * options the broker sets (src/broker/upstream.c), and `--conns` calls are kept in
 * flight over libcurl's pool (HTTP/2 multiplexed when the upstream offers it).
 *
 *   curlload --url-file F [--cacert F] [--conns N] [--requests M] [--warmup W]
 *
 * The URL is read from a file because it carries the key. Prints one JSON line:
 * requests, errors, seconds, rps.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

struct load {
    CURLM *multi;
    int ep;
    long timeout_ms; /* from CURLMOPT_TIMERFUNCTION; -1: none */
    const char *url, *cacert;
    long started, done, errors, warmup, total;
    double t0;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *data, size_t size, size_t n, void *ud)
{
    (void)data, (void)ud;
    return size * n;
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    struct load *l = ud;
    struct epoll_event ev = {.data.fd = fd};

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
        curl_multi_assign(l->multi, fd, NULL);
        return 0;
    }
    if (what != CURL_POLL_OUT)
        ev.events |= EPOLLIN;
    if (what != CURL_POLL_IN)
        ev.events |= EPOLLOUT;
    if (sockp == NULL) {
        curl_multi_assign(l->multi, fd, l); /* any non-NULL mark: "added" */
        return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
    }
    return epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev);
}

static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    ((struct load *)ud)->timeout_ms = timeout_ms;
    return 0;
}

static int start_one(struct load *l)
{
    CURL *e = curl_easy_init();

    if (e == NULL)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, l->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (l->cacert != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, l->cacert);
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return -1;
    }
    l->started++;
    return 0;
}

static char *read_url(const char *path)
{
    static char url[8192];
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "curlload: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    n = fread(url, 1, sizeof(url) - 1, f);
    fclose(f);
    while (n > 0 && (url[n - 1] == '\n' || url[n - 1] == '\r'))
        n--;
    url[n] = '\0';
    return n > 0 ? url : NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url-file", required_argument, NULL, 'u'}, {"cacert", required_argument, NULL, 'c'},
        {"conns", required_argument, NULL, 'n'},    {"requests", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},   {NULL, 0, NULL, 0}};
    struct load l = {.total = 10000};
    const char *url_file = NULL;
    long conns = 64;
    int opt, running = 0;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': url_file = optarg; break;
        case 'c': l.cacert = optarg; break;
        case 'n': conns = atol(optarg); break;
        case 'r': l.total = atol(optarg); break;
        case 'w': l.warmup = atol(optarg); break;
        default: return 2;
        }
    }
    if (url_file == NULL || conns < 1 || l.total < 1 || l.warmup < 0 ||
        (l.url = read_url(url_file)) == NULL) {
        fprintf(stderr, "usage: curlload --url-file F [--cacert F] [--conns N] "
                        "[--requests M] [--warmup W]\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (l.multi = curl_multi_init()) == NULL)
        return 1;
    if ((l.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return 1;
    l.timeout_ms = -1;
    curl_multi_setopt(l.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(l.multi, CURLMOPT_SOCKETDATA, &l);
    curl_multi_setopt(l.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(l.multi, CURLMOPT_TIMERDATA, &l);
    curl_multi_setopt(l.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(l.multi, CURLMOPT_MAXCONNECTS, 256L);
    l.total += l.warmup;
    for (long i = 0; i < conns && l.started < l.total; i++) {
        if (start_one(&l) != 0)
            return 1;
    }
    l.t0 = now_s();
    while (l.done < l.total) {
        struct epoll_event evs[64];
        CURLMsg *m;
        int n, left;

        n = epoll_wait(l.ep, evs, 64, l.timeout_ms < 0 ? 1000 : (int)l.timeout_ms);
        if (n < 0 && errno != EINTR)
            return 1;
        if (n <= 0) {
            l.timeout_ms = -1;
            curl_multi_socket_action(l.multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        for (int i = 0; i < n; i++) {
            int flags = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                        ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                        ((evs[i].events & EPOLLERR) ? CURL_CSELECT_ERR : 0);

            curl_multi_socket_action(l.multi, evs[i].data.fd, flags, &running);
        }
        while ((m = curl_multi_info_read(l.multi, &left)) != NULL) {
            long code = 0;

            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (m->data.result != CURLE_OK || code != 200)
                l.errors++;
            curl_multi_remove_handle(l.multi, m->easy_handle);
            curl_easy_cleanup(m->easy_handle);
            if (++l.done == l.warmup) {
                l.t0 = now_s();
                l.errors = 0;
            }
            if (l.started < l.total && start_one(&l) != 0)
                return 1;
        }
    }
    {
        double secs = now_s() - l.t0;
        long measured = l.total - l.warmup;

        printf("{\"mode\":\"libcurl-alone\",\"requests\":%ld,\"errors\":%ld,\"seconds\":%.3f,"
               "\"rps\":%.1f}\n",
               measured - l.errors, l.errors, secs,
               secs > 0 ? (double)(measured - l.errors) / secs : 0);
    }
    curl_multi_cleanup(l.multi);
    curl_global_cleanup();
    return 0;
}
