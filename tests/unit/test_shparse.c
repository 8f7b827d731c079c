/*
 * Unit tests for src/runner/shparse*.c: the checked strings of each construct,
 * exactly (RUNNER-OPS.md 7.5); the errors; and the differential test against
 * `bash -n` over tests/unit/shparse_corpus/ and fuzz/corpus/shparse/ (7.7).
 *
 * Run as: test_shparse [CORPUS_DIR FUZZ_CORPUS_DIR]; without the directories, or
 * without /bin/bash, the differential test is skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "shparse.h"

static const char *corpus_dir, *fuzz_corpus_dir;

/* ---- the checked strings ------------------------------------------------ */

/* Each expected string: its kind ('C' command, 'R' redirect, 'T' [[ ]], 'A' (( ))), '!'
 * when its name is not literal, else ' ', then its text. */
static const struct {
    const char *cmd;
    const char *want[12];
} cases[] = {
    {"ls -l | grep foo", {"C ls -l", "C grep foo"}},
    {"ls    -l", {"C ls -l"}},
    {"ls; whoami", {"C ls", "C whoami"}},
    {"ls && whoami || id & x", {"C ls", "C whoami", "C id", "C x"}},
    {"ls |& cat", {"C ls", "C cat"}},
    {"(cd /tmp && ls)", {"C cd /tmp", "C ls"}},
    {"{ ls; pwd; }", {"C ls", "C pwd"}},
    {"if a; then b; elif c; then d; else e; fi", {"C a", "C b", "C c", "C d", "C e"}},
    {"for x in a $(b); do c $x; done", {"C b", "C c $x"}},
    {"for ((i=0; i<$(n); i++)); do c; done", {"A for ((i=0; i<$(n); i++))", "C n", "C c"}},
    {"select x in a; do b; done", {"C b"}},
    {"while a; do b; done; until c; do d; done", {"C a", "C b", "C c", "C d"}},
    {"case $(w) in $(p)|q) a;; (r) b;& *) c;;& esac", {"C w", "C p", "C a", "C b", "C c"}},
    {"f() { a; }; function g { b; }; function h() ( c )", {"C a", "C b", "C c"}},
    {"time -p a | b", {"C a", "C b"}},
    {"! a", {"C a"}},
    {"coproc a b", {"C a b"}},
    {"coproc n { a; }", {"C a"}},
    {"echo $(whoami)", {"C echo $(whoami)", "C whoami"}},
    {"echo `whoami`", {"C echo `whoami`", "C whoami"}},
    {"echo \"$(a) `b`\"", {"C echo \"$(a) `b`\"", "C a", "C b"}},
    {"echo `echo \\`id\\``", {"C echo `echo \\`id\\``", "C echo `id`", "C id"}},
    {"cat <(a) >(b)", {"C cat <(a) >(b)", "C a", "C b"}},
    {"echo $(( $(a) + 1 ))", {"C echo $(( $(a) + 1 ))", "C a"}},
    {"echo $[ $(a) ]", {"C echo $[ $(a) ]", "C a"}},
    {"echo $((a) )", {"C echo $((a) )", "C a"}},
    {"echo ${x:-$(a)} \"${y:-`b`}\"", {"C echo ${x:-$(a)} \"${y:-`b`}\"", "C a", "C b"}},
    {"echo ${x[$(a)]}", {"C echo ${x[$(a)]}", "C a"}},
    {"a[$(i)]=$(v) b", {"C!a[$(i)]=$(v) b", "C i", "C v"}},
    {"x=1", {"C x=1"}},
    {"x=1 y='2 3' cmd", {"C x=1 y=2 3 cmd"}},
    {"a=(x $(y))", {"C!a=(x $(y))", "C y"}},
    {"declare -a x=(1 2)", {"C declare -a x=(1 2)"}},
    {"export A=1 B=$(id)", {"C export A=1 B=$(id)", "C id"}},
    {"local x; readonly y; typeset z; let 'a = 1'", {"C local x", "C readonly y", "C typeset z",
                                                     "C let a = 1"}},
    {"[[ -f \"x\" && $(a) == b* ]]", {"T [[ -f x && $(a) == b* ]]", "C a"}},
    {"[[ ( a < b ) || ! c =~ (d|e) ]]", {"T [[ ( a < b ) || ! c =~ (d|e) ]]"}},
    {"(( i++ ))", {"A (( i++ ))"}},
    {"(( a[$(b)] ))", {"A (( a[$(b)] ))", "C b"}},
    {"\\rm -rf /", {"C rm -rf /"}},
    {"'rm' x", {"C rm x"}},
    {"r''m", {"C rm"}},
    {"$'rm'", {"C rm"}},
    {"\"rm\"", {"C rm"}},
    {"$\"rm\"", {"C rm"}},
    {"r\\\nm x", {"C rm x"}},
    {"$cmd x", {"C!$cmd x"}},
    /* Brace, pathname and tilde expansion: bash runs rm for the first three. */
    {"{rm,-rf,/}", {"C!{rm,-rf,/}"}},
    {"r? -rf /", {"C!r? -rf /"}},
    {"/bin/r[m] -rf /", {"C!/bin/r[m] -rf /"}},
    {"~/bin/x", {"C!~/bin/x"}},
    {"[ -f x ] && { echo }; }", {"C [ -f x ]", "C echo }"}},
    {"'r?' '{a,b}'", {"C r? {a,b}"}},
    {"${cmd} x", {"C!${cmd} x"}},
    {"$(a) x", {"C!$(a) x", "C a"}},
    {"\"$cmd\" x", {"C!\"$cmd\" x"}},
    {"x=$(a) ls", {"C!x=$(a) ls", "C a"}},
    {"ls $x \"$y\" '$z'", {"C ls $x \"$y\" $z"}},
    {"echo x > /etc/passwd", {"C echo x", "R > /etc/passwd"}},
    {"echo x > \"/etc/hosts\"", {"C echo x", "R > /etc/hosts"}},
    {"echo > /e\\\ntc/x", {"C echo", "R > /etc/x"}},
    {"a >> b >| c &> d &>> e 2> f 3>> g <> h >&i >& j {fd}>k",
     {"C a", "R > b", "R > c", "R > d", "R > e", "R > f", "R > g", "R > h", "R > i", "R > j",
      "R > k"}},
    {"a 2>&1 >&2 >&- <&- >&2- < in <<< x <&3", {"C a"}},
    {"a >&\"2\"", {"C a"}},
    {"a > $(b)", {"C a", "R > $(b)", "C b"}},
    {"a < $(b)", {"C a", "C b"}},
    {"> /etc/x", {"R > /etc/x"}},
    {"{ a; } > x", {"C a", "R > x"}},
    {"f() { a; } > x", {"C a", "R > x"}},
    {"cat <<EOF\n$(a) `b` ${c:-$(d)} \\$(no)\nEOF\n", {"C cat", "C a", "C b", "C d"}},
    {"cat <<'EOF'\n$(a)\nEOF\n", {"C cat"}},
    {"cat <<\"E\"OF\n$(a)\nEOF\nb", {"C cat", "C b"}},
    {"cat <<-EOF\n\t$(a)\n\tEOF\nb", {"C cat", "C a", "C b"}},
    {"cat <<A <<B\n$(a)\nA\n$(b)\nB\nc", {"C cat", "C a", "C b", "C c"}},
    {"x=$(cat <<EOF\n$(a)\nEOF\n)", {"C!x=$(cat <<EOF\n$(a)\nEOF\n)", "C cat", "C a"}},
    {"x=$(cat <<EOF)\n$(a)\nEOF\nb", {"C!x=$(cat <<EOF)", "C cat", "C a", "C b"}},
    {"cat <<EOF\nx\nEOF", {"C cat"}},
    {"echo hi # $(a)\nb", {"C echo hi", "C b"}},
    {"# only a comment", {NULL}},
    {"echo 'a\\\nb'", {"C echo a\\\nb"}},
    {"echo \"a\\\nb\" \"\\$x \\\" \\\\ \\a\"", {"C echo ab $x \" \\ \\a"}},
    {"echo $'a\\tb\\x41\\101\\u0042\\'' $'\\u00e9'", {"C echo a\tbAAB' $'\\u00e9'"}},
    {"echo {a,b} ~/x *.txt", {"C echo {a,b} ~/x *.txt"}},
    {"eval 'rm -rf /'; sh -c 'rm x'", {"C eval rm -rf /", "C sh -c rm x"}},
    {"a=1 [[ x ]]", {"C a=1 [[ x ]]"}},
    {"echo a<(b)", {"C echo a<(b)", "C b"}},
    {"echo $(case x in x) a;; esac)", {"C echo $(case x in x) a;; esac)", "C a"}},
    {"time", {NULL}},
    {"! ; a", {"C a"}},
};

static void test_shparse_yields_the_checked_strings_of_each_construct(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct shparse_result r;
        char err[SHPARSE_ERR_MAX];
        size_t n = 0;
        int rc = shparse_parse(cases[i].cmd, strlen(cases[i].cmd), &r, err, sizeof(err));

        if (rc != 0)
            fail_msg("case %zu (%s): %s", i, cases[i].cmd, err);
        while (n < 12 && cases[i].want[n] != NULL)
            n++;
        if (r.n != n) {
            for (size_t k = 0; k < r.n; k++)
                print_message("  got [%s]\n", r.items[k].text);
            fail_msg("case %zu (%s): %zu strings, want %zu", i, cases[i].cmd, r.n, n);
        }
        for (size_t k = 0; k < n; k++) {
            const char *w = cases[i].want[k];
            char kind = "CRTA"[r.items[k].kind];

            if (kind != w[0] || (r.items[k].literal_name ? ' ' : '!') != w[1] ||
                strcmp(r.items[k].text, w + 2) != 0 || strlen(r.items[k].text) != r.items[k].len)
                fail_msg("case %zu (%s): string %zu is %c%c[%s], want %c%c[%s]", i, cases[i].cmd, k,
                         kind, r.items[k].literal_name ? ' ' : '!', r.items[k].text, w[0], w[1],
                         w + 2);
        }
        shparse_result_free(&r);
    }
}

/* ---- errors ------------------------------------------------------------- */

static const struct {
    const char *cmd, *err;
} errors[] = {
    {"echo $(", "1:6: unexpected EOF while looking for matching `)'"},
    {"echo \"x", "1:6: unexpected EOF while looking for matching `\"'"},
    {"echo 'x", "1:6: unexpected EOF while looking for matching `''"},
    {"echo ${x", "1:7: unexpected EOF while looking for matching `}'"},
    {"a\nif true", "2:8: syntax error: unexpected end of file"},
    {"echo )", "1:6: syntax error near unexpected token `)'"},
    {"ls ; ; x", "1:6: syntax error near unexpected token `;'"},
    {"then", "1:1: syntax error near unexpected token `then'"},
    {"{ }", "1:3: syntax error near unexpected token `}'"},
    {"echo @(a)", "1:7: syntax error near unexpected token `('"},
    {"f() echo", "1:5: syntax error near unexpected token `echo'"},
    {"case x in ;; esac", "1:11: syntax error near unexpected token `;;'"},
    {"[[ a b ]]", "1:6: unexpected token `b', conditional binary operator expected"},
    {"[[ -f ]]", "1:7: unexpected argument `]]' to conditional unary operator"},
    {"[[ ]]", "1:4: unexpected token `]]' in conditional command"},
    {"echo `if`", "1:6: syntax error: unexpected end of file"},
    {"cat <<EOF\n$(fi)\nEOF", "2:1: syntax error near unexpected token `fi'"},
    {"echo $((a) (b) )", "1:6: syntax error near unexpected token `('"},
    {"for ((;;) do :; done", "1:5: syntax error: `((' without `))' after for"},
    {"for ((;)) do :; done", "1:5: syntax error: arithmetic for needs three expressions"},
    {"cat <<$(a  b)\n$(a b)\nx", "1:7: here-document delimiter with a command substitution"},
    {"echo >", "1:7: syntax error: unexpected end of file"},
    {"echo >\nx", "1:7: syntax error near unexpected token `newline'"},
    {"coproc", "1:7: syntax error: unexpected end of file"},
};

static void test_shparse_refuses_what_bash_refuses_with_line_and_column(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        struct shparse_result r;
        char err[SHPARSE_ERR_MAX];
        int rc = shparse_parse(errors[i].cmd, strlen(errors[i].cmd), &r, err, sizeof(err));

        if (rc != ERR_INVALID)
            fail_msg("case %zu (%s): %d, want ERR_INVALID", i, errors[i].cmd, rc);
        if (strcmp(err, errors[i].err) != 0)
            fail_msg("case %zu (%s): [%s], want [%s]", i, errors[i].cmd, err, errors[i].err);
        assert_int_equal(r.n, 0);
        assert_null(r.items);
    }
}

static void test_shparse_refuses_nul_long_and_deep_input(void **state)
{
    struct shparse_result r;
    char err[SHPARSE_ERR_MAX];
    size_t n = SHPARSE_DEPTH_MAX + 1;
    char *deep = malloc(3 * n + 8), *big = malloc(SHPARSE_INPUT_MAX + 2);

    (void)state;
    assert_int_equal(shparse_parse("a\0b", 3, &r, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "1:2: NUL byte in command");
    assert_non_null(deep);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) {
        deep[2 * i] = '$';
        deep[2 * i + 1] = '(';
        deep[2 * n + i] = ')';
    }
    assert_int_equal(shparse_parse(deep, 3 * n, &r, err, sizeof(err)), ERR_INVALID);
    assert_non_null(strstr(err, "nested too deeply"));
    memset(big, 'a', SHPARSE_INPUT_MAX + 1);
    assert_int_equal(shparse_parse(big, SHPARSE_INPUT_MAX + 1, &r, err, sizeof(err)),
                     ERR_TOO_LARGE);
    /* (( ... that is not arithmetic is read again (as bash does): bounded */
    for (size_t i = 0; i < SHPARSE_INPUT_MAX / 2; i++)
        big[i] = '(';
    big[SHPARSE_INPUT_MAX / 2] = '\0';
    assert_int_equal(shparse_parse(big, SHPARSE_INPUT_MAX / 2, &r, err, sizeof(err)),
                     ERR_INVALID);
    /* "(($(" X ") )": read as arithmetic, then again as subshells, X's $( ) each time:
     * 2^60 reads of the innermost without the work budget */
    {
        size_t k = 60, at = 0;

        for (size_t i = 0; i < k; i++) {
            memcpy(big + at, "(($(", 4);
            at += 4;
        }
        big[at++] = 'a';
        for (size_t i = 0; i < k; i++) {
            memcpy(big + at, ") )", 3);
            at += 3;
        }
        assert_int_equal(shparse_parse(big, at, &r, err, sizeof(err)), ERR_INVALID);
        assert_non_null(strstr(err, "command too complex to check"));
    }
    free(deep);
    free(big);
}

static void test_shparse_yields_nothing_for_blank_input(void **state)
{
    struct shparse_result r;
    char err[SHPARSE_ERR_MAX];

    (void)state;
    assert_int_equal(shparse_parse("", 0, &r, err, sizeof(err)), 0);
    assert_int_equal(r.n, 0);
    shparse_result_free(&r);
    assert_int_equal(shparse_parse(" \n\t\n", 4, &r, err, sizeof(err)), 0);
    assert_int_equal(r.n, 0);
    shparse_result_free(&r);
    shparse_result_free(&r); /* twice: the first left it empty */
}

/* ---- the differential test against bash -n ------------------------------- */

/* 1 when `bash -n -c -- cmd` accepts it (exit 0 and no error line), 0 when not, -1 when
 * bash could not be run. */
static int bash_accepts(const char *cmd)
{
    char out[8192];
    size_t n = 0;
    int fds[2], status;
    pid_t pid;
    ssize_t got;
    bool error_line = false;

    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    if ((pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);

        dup2(null, 0);
        dup2(null, 1);
        dup2(fds[1], 2);
        execl("/bin/bash", "bash", "-n", "-c", "--", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    while ((got = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(fds[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    /* errors are "bash: -c: line N: ..."; warnings "bash: warning: ..." or "bash: -c: line
     * N: warning: ..." (a warning may run over several lines: only lines with ": line "
     * count) */
    for (char *line = out; line != NULL && *line != '\0';) {
        char *end = strchr(line, '\n');

        if (end != NULL)
            *end = '\0';
        if (strstr(line, ": line ") != NULL && strstr(line, "warning:") == NULL)
            error_line = true;
        line = end != NULL ? end + 1 : NULL;
    }
    return WEXITSTATUS(status) == 0 && !error_line;
}

struct diff_stats {
    size_t total, failures;
};

static void compare(const char *where, const char *cmd, size_t len, bool refuse,
                    struct diff_stats *st)
{
    struct shparse_result r;
    char err[SHPARSE_ERR_MAX];
    int ours, bash;

    st->total++;
    ours = shparse_parse(cmd, len, &r, err, sizeof(err)) == 0;
    if (ours)
        shparse_result_free(&r);
    if (memchr(cmd, '\0', len) != NULL)
        return; /* bash never gets a NUL (argv): ours refuses it */
    bash = bash_accepts(cmd);
    if (bash < 0)
        fail_msg("cannot run /bin/bash -n on [%s]", cmd);
    if (bash == 0 && ours) {
        print_message("%s: bash -n rejects it, shparse accepts it: [%s]\n", where, cmd);
        st->failures++;
    } else if (bash == 1 && !ours && !refuse) {
        print_message("%s: bash -n accepts it, shparse refuses it (%s): [%s]\n", where, err, cmd);
        st->failures++;
    } else if (bash == 1 && ours && refuse) {
        print_message("%s: marked #!refuse, but shparse accepts it: [%s]\n", where, cmd);
        st->failures++;
    }
}

/* The commands of one corpus file (tests/unit/shparse_corpus/README). */
static void compare_corpus_file(const char *path, struct diff_stats *st)
{
    char line[4096], cmd[16384];
    size_t n = 0;
    bool block = false, refuse = false;
    FILE *f = fopen(path, "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);

        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (block) {
            if (strcmp(line, "#}") == 0) {
                if (n > 0)
                    n--; /* the last newline */
                cmd[n] = '\0';
                compare(path, cmd, n, refuse, st);
                block = refuse = false;
                n = 0;
                continue;
            }
            assert_true(n + len + 2 < sizeof(cmd));
            memcpy(cmd + n, line, len);
            n += len;
            cmd[n++] = '\n';
            continue;
        }
        if (strcmp(line, "#{") == 0) {
            block = true;
            continue;
        }
        if (strncmp(line, "#!refuse", 8) == 0) {
            refuse = true;
            continue;
        }
        if (strncmp(line, "##", 2) == 0 || len == 0)
            continue;
        compare(path, line, len, refuse, st);
        refuse = false;
    }
    assert_false(block);
    fclose(f);
}

static void test_shparse_agrees_with_bash_n_on_the_corpora(void **state)
{
    struct diff_stats st = {0};
    struct dirent *e;
    DIR *d;

    (void)state;
    if (corpus_dir == NULL || fuzz_corpus_dir == NULL || access("/bin/bash", X_OK) != 0)
        skip();
    assert_non_null(d = opendir(corpus_dir));
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        size_t len = strlen(e->d_name);

        if (len < 4 || strcmp(e->d_name + len - 3, ".sh") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", corpus_dir, e->d_name);
        compare_corpus_file(path, &st);
    }
    closedir(d);
    /* the fuzz seeds: the whole file is one command; "refuse-*" ones are refused on purpose */
    assert_non_null(d = opendir(fuzz_corpus_dir));
    while ((e = readdir(d)) != NULL) {
        char path[4096], *buf;
        size_t n;
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", fuzz_corpus_dir, e->d_name);
        assert_non_null(f = fopen(path, "rb"));
        assert_non_null(buf = malloc(1 << 16));
        n = fread(buf, 1, (1 << 16) - 1, f);
        buf[n] = '\0';
        fclose(f);
        compare(path, buf, n, strncmp(e->d_name, "refuse-", 7) == 0, &st);
        free(buf);
    }
    closedir(d);
    print_message("differential: %zu commands, %zu disagreements\n", st.total, st.failures);
    assert_true(st.total > 300);
    assert_int_equal(st.failures, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shparse_yields_the_checked_strings_of_each_construct),
        cmocka_unit_test(test_shparse_refuses_what_bash_refuses_with_line_and_column),
        cmocka_unit_test(test_shparse_refuses_nul_long_and_deep_input),
        cmocka_unit_test(test_shparse_yields_nothing_for_blank_input),
        cmocka_unit_test(test_shparse_agrees_with_bash_n_on_the_corpora),
    };

    if (argc == 3) {
        corpus_dir = argv[1];
        fuzz_corpus_dir = argv[2];
    }
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
