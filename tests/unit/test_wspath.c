/*
 * Unit tests for src/runner/wspath.c (RUNNER-OPS.md section 3): the lexical step as Go's
 * Join/Clean, resolution against the root's descriptor with openat2 and with the walk
 * alone (each resolution test runs both ways), and the three holes of Go's runner: a
 * sibling `<root>-evil`, a new file under a symlinked directory pointing outside, a write
 * through a dangling symlink pointing outside.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "wspath.h"

struct fixture {
    char base[PATH_MAX];  /* a fresh directory holding ws/, ws-evil/ and outside/ */
    char ws[PATH_MAX + 8];
    struct wspath_root root;
};

static void mkfile(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX * 2];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

static void in(const char *dir, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tmpl[] = "/tmp/credbroker-wspath-XXXXXX", p[PATH_MAX * 2], q[PATH_MAX * 2];

    if (f == NULL || mkdtemp(tmpl) == NULL || realpath(tmpl, f->base) == NULL)
        return -1;
    snprintf(f->ws, sizeof(f->ws), "%s/ws", f->base);
    /* ws/sub/file.txt, ws/top.txt; ws-evil/x; outside/secret; the links */
    in(f->base, "ws-evil", p, sizeof(p));
    if (mkdir(p, 0755) != 0)
        return -1;
    mkfile(p, "x", "evil");
    in(f->base, "outside", p, sizeof(p));
    if (mkdir(p, 0755) != 0)
        return -1;
    mkfile(p, "secret", "secret");
    if (wspath_root_open(&f->root, f->ws) != 0) /* creates ws */
        return -1;
    in(f->ws, "sub", p, sizeof(p));
    if (mkdir(p, 0755) != 0)
        return -1;
    mkfile(p, "file.txt", "hello");
    mkfile(f->ws, "top.txt", "top");
    in(f->base, "outside", q, sizeof(q));
    in(f->ws, "out-link", p, sizeof(p));
    if (symlink(q, p) != 0) /* absolute, outside */
        return -1;
    in(f->ws, "sub", q, sizeof(q));
    in(f->ws, "abs-in", p, sizeof(p));
    if (symlink(q, p) != 0) /* absolute, inside */
        return -1;
    in(f->ws, "rel-out", p, sizeof(p));
    if (symlink("../outside/secret", p) != 0)
        return -1;
    in(f->ws, "rel-in", p, sizeof(p));
    if (symlink("sub/file.txt", p) != 0)
        return -1;
    in(f->base, "outside/new", q, sizeof(q));
    in(f->ws, "dangling-out", p, sizeof(p));
    if (symlink(q, p) != 0)
        return -1;
    in(f->ws, "dangling-in", p, sizeof(p));
    if (symlink("sub/new.txt", p) != 0)
        return -1;
    in(f->ws, "loop-a", p, sizeof(p));
    if (symlink("loop-b", p) != 0)
        return -1;
    in(f->ws, "loop-b", p, sizeof(p));
    if (symlink("loop-a", p) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX + 16];

    wspath_root_close(&f->root);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->base);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void assert_clean(const char *p, const char *want)
{
    char *rel = NULL;

    assert_int_equal(wspath_clean(p, &rel), 0);
    assert_string_equal(rel, want);
    free(rel);
}

static void test_clean_is_gos_join_and_clean_rerooted(void **state)
{
    char *rel = (char *)"x";

    assert_clean("", "");
    assert_clean(".", "");
    assert_clean("subdir/file.txt", "subdir/file.txt");
    assert_clean("a/../b", "b");
    assert_clean("/etc/passwd", "etc/passwd"); /* re-rooted, not refused */
    assert_clean("//a//./b/", "a/b");
    assert_clean("a/b/../../c/..", "");
    for (const char *const *p = (const char *const[]){"..", "../etc/passwd",
                                                       "../../../../../../etc/passwd",
                                                       "a/../../x", "../ws-evil/x", "/..", NULL};
         *p != NULL; p++) {
        assert_int_equal(wspath_clean(*p, &rel), ERR_WS_OUTSIDE);
        assert_null(rel);
    }
}

/* What the descriptor names: its content's first bytes, or "<dir>". */
static const char *what(int fd, char *buf, size_t len)
{
    char link[64];
    struct stat st;
    int rfd;
    ssize_t n;

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    if (S_ISDIR(st.st_mode)) {
        snprintf(buf, len, "<dir>");
    } else {
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        assert_true((rfd = open(link, O_RDONLY | O_CLOEXEC)) >= 0);
        n = read(rfd, buf, len - 1);
        close(rfd);
        buf[n > 0 ? n : 0] = '\0';
    }
    close(fd);
    return buf;
}

static void resolutions(struct fixture *f)
{
    char buf[64];

    assert_string_equal(what(wspath_open(&f->root, "", false), buf, sizeof(buf)), "<dir>");
    assert_string_equal(what(wspath_open(&f->root, "sub/file.txt", false), buf, sizeof(buf)),
                        "hello");
    assert_string_equal(what(wspath_open(&f->root, "rel-in", false), buf, sizeof(buf)), "hello");
    /* An absolute symlink to a directory inside the root is followed (the kernel refuses it
     * beneath a root: the walk takes over). */
    assert_string_equal(what(wspath_open(&f->root, "abs-in/file.txt", false), buf, sizeof(buf)),
                        "hello");
    assert_int_equal(wspath_open(&f->root, "out-link/secret", false), ERR_WS_ESCAPE);
    assert_int_equal(wspath_open(&f->root, "out-link", false), ERR_WS_ESCAPE);
    assert_int_equal(wspath_open(&f->root, "rel-out", false), ERR_WS_ESCAPE);
    assert_int_equal(wspath_open(&f->root, "loop-a", false), ERR_WS_LOOP);
    assert_int_equal(wspath_open(&f->root, "missing", false), -ENOENT);
    assert_int_equal(wspath_open(&f->root, "top.txt/x", false), -ENOTDIR);
    /* nofollow: the link itself, wherever it points. */
    {
        int fd = wspath_open(&f->root, "out-link", true);
        struct stat st;

        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        close(fd);
    }
}

static void test_resolution_with_openat2_and_the_walk(void **state)
{
    struct fixture *f = *state;

    resolutions(f);
    f->root.openat2 = false; /* what a kernel without openat2 gets */
    resolutions(f);
}

static void parents(struct fixture *f, const char *fresh)
{
    char *name = NULL, path[PATH_MAX * 2], deep[64], deep_file[80];
    struct stat st;
    int dirfd = -1;

    /* A new file two missing directories down: made with mkdirat, 0755. */
    snprintf(deep, sizeof(deep), "%s/deeper", fresh);
    snprintf(deep_file, sizeof(deep_file), "%s/file", deep);
    assert_int_equal(wspath_open_parent(&f->root, deep_file, false, &dirfd, &name), -ENOENT);
    assert_int_equal(wspath_open_parent(&f->root, deep_file, true, &dirfd, &name), 0);
    assert_string_equal(name, "file");
    assert_int_equal(fstat(dirfd, &st), 0);
    in(f->ws, deep, path, sizeof(path));
    {
        struct stat want;

        assert_int_equal(stat(path, &want), 0);
        assert_true(st.st_ino == want.st_ino && S_ISDIR(want.st_mode));
    }
    close(dirfd);
    free(name);
    /* Go's hole (b): a new file under a symlinked directory that points outside. */
    assert_int_equal(wspath_open_parent(&f->root, "out-link/new", true, &dirfd, &name),
                     ERR_WS_ESCAPE);
    /* Go's hole (c): a dangling symlink pointing outside, written through. */
    assert_int_equal(wspath_open_parent(&f->root, "dangling-out", true, &dirfd, &name),
                     ERR_WS_ESCAPE);
    in(f->base, "outside/new", path, sizeof(path));
    assert_int_equal(access(path, F_OK), -1);
    /* A dangling symlink pointing inside: its target is what gets created. */
    assert_int_equal(wspath_open_parent(&f->root, "dangling-in", true, &dirfd, &name), 0);
    assert_string_equal(name, "new.txt");
    assert_int_equal(fstat(dirfd, &st), 0);
    {
        struct stat sub;

        in(f->ws, "sub", path, sizeof(path));
        assert_int_equal(stat(path, &sub), 0);
        assert_true(st.st_ino == sub.st_ino);
    }
    close(dirfd);
    free(name);
    /* An existing file behind a symlink inside: its directory and name. */
    assert_int_equal(wspath_open_parent(&f->root, "rel-in", true, &dirfd, &name), 0);
    assert_string_equal(name, "file.txt");
    close(dirfd);
    free(name);
    assert_int_equal(wspath_open_parent(&f->root, "", true, &dirfd, &name), -EISDIR);
    assert_int_equal(wspath_open_parent(&f->root, "top.txt/x", true, &dirfd, &name), -ENOTDIR);
}

static void test_parents_for_creating_and_gos_holes(void **state)
{
    struct fixture *f = *state;

    parents(f, "new1");
    f->root.openat2 = false;
    parents(f, "new2");
}

static void test_sibling_of_the_root_is_outside(void **state)
{
    struct fixture *f = *state;
    char *rel = NULL;

    /* Go's hole (a): "/ws-evil" begins with "/ws". */
    assert_int_equal(wspath_clean("../ws-evil/x", &rel), ERR_WS_OUTSIDE);
    /* And through an absolute symlink naming it: not beneath by components. */
    {
        char target[PATH_MAX * 2], link[PATH_MAX * 2];

        in(f->base, "ws-evil", target, sizeof(target));
        in(f->ws, "to-evil", link, sizeof(link));
        assert_int_equal(symlink(target, link), 0);
        assert_int_equal(wspath_open(&f->root, "to-evil/x", false), ERR_WS_ESCAPE);
        f->root.openat2 = false;
        assert_int_equal(wspath_open(&f->root, "to-evil/x", false), ERR_WS_ESCAPE);
    }
}

static void test_root_open_makes_it_absolute_and_creates_it(void **state)
{
    struct fixture *f = *state;
    struct wspath_root r;
    char cwd[PATH_MAX], want[PATH_MAX * 2];

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(f->base), 0);
    assert_int_equal(wspath_root_open(&r, "made/./here//"), 0);
    in(f->base, "made/here", want, sizeof(want));
    assert_string_equal(r.abs, want);
    assert_string_equal(r.real, want);
    assert_int_equal(access(want, F_OK), 0);
    wspath_root_close(&r);
    assert_int_equal(chdir(cwd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_is_gos_join_and_clean_rerooted),
        cmocka_unit_test_setup_teardown(test_resolution_with_openat2_and_the_walk, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parents_for_creating_and_gos_holes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sibling_of_the_root_is_outside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_open_makes_it_absolute_and_creates_it, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
