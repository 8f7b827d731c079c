/*
 * fuzz_wspath.c - the workspace's paths (wspath.h), which every file operation resolves
 * from a path the platform sends, on the real file system: a root R beside a directory
 * R-evil, and in R directories, a file and symlinks of every kind (relative and absolute,
 * within R and out of it, a loop, a dangling one, one climbing through "..", one into
 * R-evil by its prefix-sharing name), and in R a directory "-evil" whose file has the name
 * of R-evil's: what a walk that compared R's path by its bytes, not its components, would
 * open for a link into R-evil.
 *
 * Input: [flags][path]: flags bit 0 asks not to follow a last symlink; the path is the
 * rest, cut at a NUL.
 *
 * Properties:
 *   - wspath_clean returns 0 or ERR_WS_OUTSIDE exactly as fuzz_clean_path (a reference
 *     written from Go's Join and Clean) says, with the same result, which cleans to itself;
 *   - whatever wspath_open and wspath_open_parent return, every descriptor they give
 *     names something whose real path (/proc/self/fd) is R's real path or beneath it,
 *     wspath_relative names it by that same path, and the parent's name is one component;
 *   - and it is the right thing: what wspath_open gives is what the kernel's own walk of
 *     R/rel opens (O_PATH, O_NOFOLLOW as asked), and wspath_open_parent's directory and
 *     name join to the real path the kernel finds for R/rel, where it finds one;
 *   - their failures are the documented ones: a negative errno or ERR_WS_ESCAPE /
 *     ERR_WS_LOOP, never a crash. Nothing is created (mkdirs is off).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fuzz.h"
#include "wspath.h"

#define PATH_IN_MAX 512

static char base[PATH_MAX];
static struct wspath_root root;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_base(void)
{
    wspath_root_close(&root);
    (void)nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_dir(const char *rel)
{
    char p[PATH_MAX + 64];

    snprintf(p, sizeof(p), "%s/%s", base, rel);
    FUZZ_CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
}

static void make_file(const char *rel)
{
    char p[PATH_MAX + 64];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", base, rel);
    FUZZ_CHECK((fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644)) >= 0, "create %s", p);
    close(fd);
}

/* target: as given, or with "@" standing for the base directory's path. */
static void make_link(const char *rel, const char *target)
{
    char p[PATH_MAX + 64], t[PATH_MAX + 64];

    snprintf(p, sizeof(p), "%s/%s", base, rel);
    if (target[0] == '@')
        snprintf(t, sizeof(t), "%s%s", base, target + 1);
    else
        snprintf(t, sizeof(t), "%s", target);
    FUZZ_CHECK(symlink(t, p) == 0, "symlink %s", p);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char r[PATH_MAX + 8];

    snprintf(base, sizeof(base), "%s/fuzz-wspath-XXXXXX", tmp != NULL ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(base) != NULL, "mkdtemp");
    make_dir("ws");
    make_dir("ws-evil");
    make_file("ws-evil/secret");
    make_dir("ws/-evil");
    make_file("ws/-evil/secret");
    make_dir("ws/a");
    make_dir("ws/a/b");
    make_file("ws/a/f");
    make_file("ws/a/b/g");
    make_link("ws/in", "a");
    make_link("ws/abs_in", "@/ws/a/b");
    make_link("ws/out", "../ws-evil");
    make_link("ws/abs_out", "@/ws-evil/secret");
    make_link("ws/etc", "/etc");
    make_link("ws/loop1", "loop2");
    make_link("ws/loop2", "loop1");
    make_link("ws/dangle", "nowhere/x");
    make_link("ws/a/up", "../..");
    make_link("ws/a/b/self", ".");
    make_link("ws/a/b/root", "../../");
    make_link("ws/a/back", "../a/b/../f");
    make_link("ws/a/evil", "../../ws-evil/secret");
    snprintf(r, sizeof(r), "%s/ws", base);
    FUZZ_CHECK(wspath_root_open(&root, r) == 0, "wspath_root_open %s", r);
    FUZZ_CHECK(atexit(remove_base) == 0, "atexit");
}

/* What fd names, by its real path. */
static void fd_path(int fd, char *path, size_t len)
{
    char link[64];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, path, len - 1);
    FUZZ_CHECK(n > 0, "readlink %s", link);
    path[n] = '\0';
}

/* The kernel's own walk of R/rel, the last symlink followed unless nofollow: the real path
 * of what it opens, or false when it opens nothing. */
static bool kernel_path(const char *rel, bool nofollow, char *path, size_t len)
{
    char p[2 * PATH_MAX];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", root.real, rel);
    if ((fd = open(p, O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0))) < 0)
        return false;
    fd_path(fd, path, len);
    close(fd);
    return true;
}

/* fd's real path (left in path, PATH_MAX + 1 bytes) is R's or beneath it, and
 * wspath_relative names it so. */
static void check_beneath(int fd, const char *what, char *path)
{
    char rel[PATH_MAX + 1];
    size_t rlen = strlen(root.real);
    int r;

    fd_path(fd, path, PATH_MAX + 1);
    FUZZ_CHECK(strncmp(path, root.real, rlen) == 0 && (path[rlen] == '\0' || path[rlen] == '/'),
               "%s gave %s, outside %s", what, path, root.real);
    r = wspath_relative(&root, fd, rel, sizeof(rel));
    FUZZ_CHECK(r == 0, "wspath_relative of %s: %d", path, r);
    FUZZ_CHECK(strcmp(rel, path[rlen] == '\0' ? "" : path + rlen + 1) == 0,
               "wspath_relative says %s for %s", rel, path);
}

static void check_failure(int r, const char *what)
{
    FUZZ_CHECK(r == ERR_WS_ESCAPE || r == ERR_WS_LOOP || r == ERR_NOMEM || (r < 0 && r > -4096),
               "%s: %d", what, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path, *want, *rel = NULL, *again = NULL, *name = NULL;
    char got[PATH_MAX + 1], kern[PATH_MAX + 1], joined[2 * PATH_MAX + 2];
    bool nofollow;
    int r, fd, dirfd = -1;

    if (size < 1 || size - 1 > PATH_IN_MAX)
        return 0;
    if (base[0] == '\0')
        setup();
    nofollow = data[0] & 1;
    path = fuzz_cstr(data + 1, size - 1);
    want = fuzz_clean_path(path);

    r = wspath_clean(path, &rel);
    FUZZ_CHECK(r == (want != NULL ? 0 : ERR_WS_OUTSIDE), "wspath_clean returned %d", r);
    free(path);
    if (r != 0) {
        FUZZ_CHECK(rel == NULL, "a result with an error");
        return 0;
    }
    FUZZ_CHECK(strcmp(rel, want) == 0, "cleaned to \"%s\", the reference says \"%s\"", rel, want);
    free(want);
    FUZZ_CHECK(wspath_clean(rel, &again) == 0 && strcmp(again, rel) == 0,
               "\"%s\" does not clean to itself", rel);
    free(again);

    snprintf(kern, sizeof(kern), "(nothing)"); /* kernel_path fills it when it finds one */
    fd = wspath_open(&root, rel, nofollow);
    if (fd >= 0) {
        check_beneath(fd, "wspath_open", got);
        FUZZ_CHECK(kernel_path(rel, nofollow, kern, sizeof(kern)) && strcmp(got, kern) == 0,
                   "wspath_open(\"%s\") gave %s, the kernel's walk %s", rel, got, kern);
        close(fd);
    } else {
        check_failure(fd, "wspath_open");
    }
    r = wspath_open_parent(&root, rel, false, &dirfd, &name);
    if (r == 0) {
        check_beneath(dirfd, "wspath_open_parent", got);
        FUZZ_CHECK(name != NULL && name[0] != '\0' && strchr(name, '/') == NULL &&
                       strcmp(name, ".") != 0 && strcmp(name, "..") != 0,
                   "the parent's name is \"%s\"", name != NULL ? name : "(null)");
        snprintf(joined, sizeof(joined), "%s/%s", got, name);
        FUZZ_CHECK(!kernel_path(rel, false, kern, sizeof(kern)) || strcmp(joined, kern) == 0,
                   "wspath_open_parent(\"%s\") gave %s, the kernel's walk %s", rel, joined,
                   kern);
        close(dirfd);
        free(name);
    } else {
        check_failure(r, "wspath_open_parent");
    }
    free(rel);
    return 0;
}
