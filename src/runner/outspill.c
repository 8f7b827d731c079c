/*
 * outspill.c - see outspill.h: Go's large-output processor (workspace/large_output.go at
 * 311e34c, its spill directory moved to .outputs/ as in the newer runner) and the pruning
 * Go never had.
 *
 * The save and the prune run on libuv's pool (or wherever outspill_process is called) and
 * share only the atomics of struct outspill with each other and with the loop. Every
 * system call on the workspace is relative to a descriptor from wspath.h.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "outspill.h"
#include "proto.h"
#include "wspath.h"

/* The spill file names: <prefix>_<id8>_<digits>.txt, at most 8+1+8+1+20+4 bytes. */
#define SPILL_ID_LEN 8
#define SPILL_DIGITS_MAX 20
#define SPILL_NAME_MAX 48

static const char *const spill_prefixes[] = {"bash", "grep", "webfetch", "mcp"};

static bool is_spill_prefix(const char *prefix)
{
    for (size_t i = 0; i < sizeof(spill_prefixes) / sizeof(spill_prefixes[0]); i++)
        if (strcmp(prefix, spill_prefixes[i]) == 0)
            return true;
    return false;
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Whether name is one the runner (or Go, whose id8 is shortuuid's base57) saves. */
static bool is_spill_name(const char *name)
{
    const char *p = NULL;
    size_t n;

    for (size_t i = 0; i < sizeof(spill_prefixes) / sizeof(spill_prefixes[0]); i++) {
        n = strlen(spill_prefixes[i]);
        if (strncmp(name, spill_prefixes[i], n) == 0 && name[n] == '_') {
            p = name + n + 1;
            break;
        }
    }
    if (p == NULL)
        return false;
    for (n = 0; n < SPILL_ID_LEN; n++, p++)
        if (!is_alnum(*p))
            return false;
    if (*p++ != '_')
        return false;
    for (n = 0; *p >= '0' && *p <= '9'; n++, p++)
        ;
    return n >= 1 && n <= SPILL_DIGITS_MAX && strcmp(p, ".txt") == 0;
}

/* ---- bash's skip rule ---- */

bool outspill_bash_skip(const char *command)
{
    static const char *const readers[] = {"cat ", "head ", "tail ", "less ", "more ", "bat "};
    /* .outputs/ is the newer runner's directory; .work/ is Go's, kept (RUNNER-OPS.md 14 #5). */
    static const char *const dirs[] = {".outputs/", ".outputs\\", ".work/", ".work\\"};
    bool reads = false;

    for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]) && !reads; i++)
        reads = strstr(command, readers[i]) != NULL;
    if (!reads)
        return false;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if (strstr(command, dirs[i]) != NULL)
            return true;
    return false;
}

/* ---- prune ---- */

struct spill_entry {
    int64_t mtime_ns;
    uint64_t size;
    char name[SPILL_NAME_MAX];
};

/* Older first; equal mtimes by name, so the order is the same every time. */
static int entry_cmp(const struct spill_entry *a, const struct spill_entry *b)
{
    if (a->mtime_ns != b->mtime_ns)
        return a->mtime_ns < b->mtime_ns ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int entry_qsort_cmp(const void *a, const void *b)
{
    return entry_cmp(a, b);
}

/* A max-heap by entry_cmp: the newest of the oldest `cap` files seen is at the top. */
static void heap_sift_down(struct spill_entry *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, top = i;
        struct spill_entry t;

        if (l < n && entry_cmp(&h[l], &h[top]) > 0)
            top = l;
        if (r < n && entry_cmp(&h[r], &h[top]) > 0)
            top = r;
        if (top == i)
            return;
        t = h[i];
        h[i] = h[top];
        h[top] = t;
        i = top;
    }
}

static void heap_push(struct spill_entry *h, size_t *n, size_t cap, const struct spill_entry *e,
                      bool *overflow)
{
    size_t i;

    if (*n == cap) {
        /* Full: e replaces the newest kept one if it is older, else it waits for a
         * later round. */
        *overflow = true;
        if (entry_cmp(e, &h[0]) < 0) {
            h[0] = *e;
            heap_sift_down(h, *n, 0);
        }
        return;
    }
    h[i = (*n)++] = *e;
    while (i > 0 && entry_cmp(&h[i], &h[(i - 1) / 2]) > 0) {
        struct spill_entry t = h[i];

        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

/*
 * One pass over dir: aged spill files unlinked as they are met, the others summed into
 * *total and the oldest `cap` of them kept in h (*n). Returns the number unlinked.
 */
static int prune_scan(struct outspill *s, DIR *dir, int64_t now_ms, const char *keep,
                      struct spill_entry *h, size_t cap, size_t *n, uint64_t *total, bool *overflow)
{
    struct dirent *d;
    struct stat st;
    int deleted = 0;

    *n = 0;
    *total = 0;
    *overflow = false;
    while ((d = readdir(dir)) != NULL) {
        struct spill_entry e;
        int64_t mtime_ms;

        if (!is_spill_name(d->d_name) || (d->d_type != DT_UNKNOWN && d->d_type != DT_REG))
            continue;
        /* The name's own object: a symlink named like a spill file is not a spill file. */
        if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        if (now_ms > mtime_ms && (uint64_t)(now_ms - mtime_ms) > s->max_age_ms &&
            (keep == NULL || strcmp(d->d_name, keep) != 0) &&
            unlinkat(dirfd(dir), d->d_name, 0) == 0) {
            deleted++;
            continue;
        }
        e.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        e.size = (uint64_t)st.st_size;
        snprintf(e.name, sizeof(e.name), "%s", d->d_name); /* is_spill_name: it fits */
        *total += e.size;
        heap_push(h, n, cap, &e, overflow);
    }
    return deleted;
}

/* outspill_prune, sparing keep (a name just saved; NULL for none). */
static int prune_run(struct outspill *s, time_t now, const char *keep)
{
    size_t cap = s->_prune_batch != 0 ? s->_prune_batch : OUTSPILL_PRUNE_BATCH, n;
    struct spill_entry *h = NULL;
    int deleted = 0, r, fd, dfd;
    DIR *dir = NULL;
    bool overflow, more;

    if (atomic_exchange(&s->_pruning, true))
        return -EAGAIN;
    if ((fd = wspath_open(s->ws, OUTSPILL_DIR, false)) < 0) {
        r = fd == -ENOENT || fd == -ENOTDIR ? 0 : fd; /* nothing saved: nothing to prune */
        if (r == 0)
            atomic_store(&s->_total, 0);
        goto out;
    }
    /* wspath gives O_PATH; reading the entries needs a real open of the same directory. */
    dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    r = dfd < 0 && errno != ENOTDIR ? -errno : 0; /* a file named .outputs: no spill files */
    close(fd);
    if (dfd < 0)
        goto out;
    if ((dir = fdopendir(dfd)) == NULL) {
        r = -errno;
        close(dfd);
        goto out;
    }
    if ((h = malloc(cap * sizeof(*h))) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    do {
        uint64_t before = atomic_load(&s->_total), total;
        int round = 0;

        rewinddir(dir);
        round += prune_scan(s, dir, (int64_t)now * 1000, keep, h, cap, &n, &total, &overflow);
        qsort(h, n, sizeof(*h), entry_qsort_cmp);
        for (size_t i = 0; i < n && total > s->max_total_bytes; i++) {
            if (keep != NULL && strcmp(h[i].name, keep) == 0)
                continue;
            if (unlinkat(dirfd(dir), h[i].name, 0) == 0)
                round++;
            else if (errno != ENOENT)
                continue; /* still there: still counted */
            total -= h[i].size;
        }
        /*
         * The count becomes this scan's, plus the saves that finished meanwhile: those
         * that came after `before` was read. One the scan saw as well is counted twice,
         * which only brings the next prune (which counts again) sooner.
         */
        atomic_fetch_add(&s->_total, total - before);
        deleted += round;
        /* More spill files than the batch holds: the next round sees the newer ones. */
        more = overflow && total > s->max_total_bytes && round > 0;
    } while (more);
    r = deleted;
out:
    if (dir != NULL)
        closedir(dir);
    free(h);
    atomic_store(&s->_pruning, false);
    return r;
}

int outspill_prune(struct outspill *s, time_t now)
{
    return prune_run(s, now, NULL);
}

/* ---- save ---- */

static int write_all(int fd, const uint8_t *data, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

/*
 * Writes content to .outputs/<prefix>_<id8>_<secs>.txt as fileop's write does: a
 * temporary file beside it (O_EXCL, 0644 so the umask applies as to Go's os.WriteFile),
 * every byte written and synced, then renamed to a name nothing holds. Returns 0 and *name
 * (the file's name in .outputs/; caller frees), or a negative code.
 */
static int save(struct outspill *s, const char *prefix, const uint8_t *content, size_t len,
                char **name)
{
    char msg_id[PROTO_ID_LEN + 1], id[SPILL_ID_LEN + 1], fname[SPILL_NAME_MAX], rel[SPILL_NAME_MAX + 16], tmp[64];
    char *last = NULL;
    int r, dirfd = -1, fd = -1;

    *name = NULL;
    tmp[0] = '\0';
    if ((r = proto_random_id(msg_id)) != 0)
        goto out;
    memcpy(id, msg_id, SPILL_ID_LEN); /* the first 8 of a message id, as Go's shortuuid[:8] */
    id[SPILL_ID_LEN] = '\0';
    snprintf(fname, sizeof(fname), "%s_%s_%lld.txt", prefix, id, (long long)time(NULL));
    snprintf(rel, sizeof(rel), OUTSPILL_DIR "/%s", fname);
    if ((r = wspath_open_parent(s->ws, rel, true, &dirfd, &last)) != 0)
        goto out;
    /* A symlink already holding the name would have led the parent elsewhere. */
    if (strcmp(last, fname) != 0) {
        r = -EEXIST;
        goto out;
    }
    snprintf(tmp, sizeof(tmp), ".%s.part", fname);
    if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0) {
        r = -errno;
        tmp[0] = '\0';
        goto out;
    }
    if ((r = write_all(fd, content, len)) != 0)
        goto out;
    if (fsync(fd) != 0) {
        r = -errno;
        goto out;
    }
    /* Never over a name that appeared meanwhile; a file system without RENAME_NOREPLACE
     * gets a plain rename (the name is random). */
    if (renameat2(dirfd, tmp, dirfd, fname, RENAME_NOREPLACE) != 0 &&
        (errno != EINVAL || renameat(dirfd, tmp, dirfd, fname) != 0)) {
        r = -errno;
        goto out;
    }
    tmp[0] = '\0'; /* renamed: it is the spill file now */
    *name = last;
    last = NULL; /* transferred */
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0] != '\0')
        unlinkat(dirfd, tmp, 0);
    if (dirfd >= 0)
        close(dirfd);
    free(last);
    return r;
}

/* ---- the <output_truncated> text ---- */

/*
 * Go's truncateContent, byte for byte: L lines (newlines plus one), a preview of the
 * first min(20, L) cut to 8000 bytes (inside a UTF-8 character if it falls there), and
 * where the whole is, or that it could not be saved (path NULL).
 */
static int build_text(const uint8_t *content, size_t len, const char *path,
                      struct outspill_result *out)
{
    const uint8_t *p = content, *end = content + len, *nl;
    size_t lines = 1, shown, preview_len = len;
    bool cut;
    struct buf *b;
    int r;

    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (lines == OUTSPILL_PREVIEW_LINES)
            preview_len = (size_t)(nl - content);
        lines++;
        p = nl + 1;
    }
    shown = lines < OUTSPILL_PREVIEW_LINES ? lines : OUTSPILL_PREVIEW_LINES;
    if ((cut = preview_len > OUTSPILL_PREVIEW_BYTES))
        preview_len = OUTSPILL_PREVIEW_BYTES;
    /* The text is at most the preview plus a few hundred bytes of template and path. */
    if ((b = buf_new(OUTSPILL_PREVIEW_BYTES + 1024, 0)) == NULL)
        return ERR_NOMEM;
    r = buf_putf(b, "<output_truncated>\nOutput too large (%zu chars, %zu lines).", len, lines);
    if (r == 0)
        r = path != NULL ? buf_putf(b, " Full content saved to: %s\n\n", path)
                         : buf_put_str(b, " Could not save full content.\n\n");
    if (r == 0)
        r = buf_putf(b, "Preview (first %zu lines):\n```\n", shown);
    if (r == 0)
        r = buf_put(b, content, preview_len);
    if (r == 0 && cut)
        r = buf_put_str(b, "\n... [preview truncated]");
    if (r == 0)
        r = buf_put_str(b, "\n```\n\n");
    if (r == 0 && path != NULL) /* not when unsaved: "```\n\n" then the closing tag */
        r = buf_putf(b, "To read more: read(\"%s\", offset=%zu, limit=100)\n", path, shown);
    if (r == 0)
        r = buf_put_str(b, "</output_truncated>");
    if (r != 0)
        goto out;
    if ((out->content = malloc(buf_len(b) + 1)) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    memcpy(out->content, buf_ptr(b), buf_len(b));
    out->content[buf_len(b)] = '\0';
    out->content_len = buf_len(b);
out:
    buf_free(b);
    /* Only ERR_NOMEM can happen: the cap is above anything the template can hold. */
    return r == 0 ? 0 : ERR_NOMEM;
}

/* ---- process ---- */

int outspill_process(struct outspill *s, const char *prefix, const uint8_t *content, size_t len,
                     struct outspill_result *out)
{
    char *name = NULL, *path = NULL;
    uint64_t total;
    int r;

    assert(is_spill_prefix(prefix)); /* else the prune would never find its files */
    memset(out, 0, sizeof(*out));
    out->total_size = (int64_t)len;
    if (len <= OUTSPILL_MAX_INLINE) {
        if ((out->content = malloc(len + 1)) == NULL)
            return ERR_NOMEM;
        if (len > 0)
            memcpy(out->content, content, len);
        out->content[len] = '\0';
        out->content_len = len;
        return 0;
    }
    out->truncated = true;
    if (save(s, prefix, content, len, &name) == 0) {
        size_t n = sizeof(OUTSPILL_DIR "/") + strlen(name);

        if ((path = malloc(n)) == NULL) {
            r = ERR_NOMEM;
            goto out;
        }
        snprintf(path, n, OUTSPILL_DIR "/%s", name);
        total = atomic_fetch_add(&s->_total, len) + len;
        if (total > s->max_total_bytes)
            (void)prune_run(s, time(NULL), name); /* -EAGAIN: the running one does it */
    }
    /* else Go's "Could not save full content." form */
    if ((r = build_text(content, len, path, out)) != 0)
        goto out;
    out->file_path = path;
    path = NULL; /* transferred */
out:
    if (r != 0)
        outspill_result_free(out);
    free(path);
    free(name);
    return r;
}

void outspill_result_free(struct outspill_result *r)
{
    if (r == NULL)
        return;
    free(r->content);
    free(r->file_path);
    memset(r, 0, sizeof(*r));
}

/* ---- off the loop ---- */

struct outspill__req {
    uv_work_t work;
    struct outspill *s;
    const char *prefix;
    const uint8_t *content;
    size_t len;
    outspill_cb cb;
    void *data;
    struct outspill_result result;
    int status;
};

static void on_process_work(uv_work_t *w)
{
    struct outspill__req *q = w->data;

    q->status = outspill_process(q->s, q->prefix, q->content, q->len, &q->result);
}

static void on_process_done(uv_work_t *w, int status)
{
    struct outspill__req *q = w->data;

    q->cb(&q->result, status != 0 ? status : q->status, q->data);
    outspill_result_free(&q->result);
    free(q);
}

int outspill_queue(uv_loop_t *loop, struct outspill *s, const char *prefix, const uint8_t *content,
                   size_t len, outspill_cb cb, void *data)
{
    struct outspill__req *q;
    int r;

    assert(is_spill_prefix(prefix) && cb != NULL);
    if ((q = calloc(1, sizeof(*q))) == NULL)
        return ERR_NOMEM;
    q->work.data = q;
    q->s = s;
    q->prefix = prefix;
    q->content = content;
    q->len = len;
    q->cb = cb;
    q->data = data;
    if ((r = uv_queue_work(loop, &q->work, on_process_work, on_process_done)) != 0)
        free(q);
    return r;
}

/* ---- start-up and hourly prunes ---- */

static void on_prune_work(uv_work_t *w)
{
    struct outspill *s = w->data;

    s->_prune_result = prune_run(s, time(NULL), NULL);
}

static void on_prune_done(uv_work_t *w, int status)
{
    struct outspill *s = w->data;
    int r = status != 0 ? status : s->_prune_result;

    s->_prune_queued = false;
    if (r < 0 && r != -EAGAIN)
        log_msg_r(LOG_LEVEL_WARN, r, "outspill: prune of %s/", OUTSPILL_DIR);
    else if (r > 0)
        log_info("outspill: pruned %d spill file%s", r, r == 1 ? "" : "s");
}

/* Queues a prune unless one of ours is still in flight. */
static int prune_queue(struct outspill *s, uv_loop_t *loop)
{
    int r;

    if (s->_prune_queued)
        return 0;
    s->_prune_work.data = s;
    if ((r = uv_queue_work(loop, &s->_prune_work, on_prune_work, on_prune_done)) == 0)
        s->_prune_queued = true;
    return r;
}

static void on_hour(uv_timer_t *t)
{
    struct outspill *s = t->data;
    int r;

    if ((r = prune_queue(s, t->loop)) != 0)
        log_msg_r(LOG_LEVEL_WARN, r, "outspill: queue the hourly prune");
}

int outspill_init(struct outspill *s, uv_loop_t *loop, const struct wspath_root *ws,
                  uint64_t max_age_ms, uint64_t max_total_bytes)
{
    int r;

    memset(s, 0, sizeof(*s));
    s->ws = ws;
    s->max_age_ms = max_age_ms;
    s->max_total_bytes = max_total_bytes;
    atomic_init(&s->_total, 0);
    atomic_init(&s->_pruning, false);
    if ((r = uv_timer_init(loop, &s->_timer)) != 0)
        return r;
    s->_timer.data = s;
    if ((r = uv_timer_start(&s->_timer, on_hour, OUTSPILL_HOUR_MS, OUTSPILL_HOUR_MS)) != 0 ||
        (r = prune_queue(s, loop)) != 0) {
        uv_close((uv_handle_t *)&s->_timer, NULL);
        return r;
    }
    uv_unref((uv_handle_t *)&s->_timer);
    s->_timer_live = true;
    return 0;
}

void outspill_close(struct outspill *s)
{
    if (!s->_timer_live)
        return;
    s->_timer_live = false;
    uv_close((uv_handle_t *)&s->_timer, NULL); /* stops it too */
}
