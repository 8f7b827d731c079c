/*
 * The permission corpus (tests/unit/permission_corpus/, its README): rule sets and
 * hundreds of commands with the decision RUNNER-OPS.md 7 expects under each, bypass
 * attempts first; and a differential test against bash itself: for the corpus commands
 * without dynamic parts, every command name bash really runs must be a name that
 * shparse gave the rules to check.
 *
 * Run as: test_permission_corpus CORPUS_DIR. Without the directory everything is
 * skipped; without /bin/bash or user namespaces the differential is skipped.
 *
 * Not for: the parser's strings one by one (test_shparse) or the matching rules
 * (test_permission).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "permission.h"
#include "shparse.h"

static const char *corpus_dir;

#define CASE_MAX 16384 /* bytes in one command */
#define MIN_CASES 150  /* per rule set: a truncated file must not pass quietly */

/* ---- reading a .cases file ------------------------------------------------ */

enum want { WANT_ALLOW, WANT_DENY, WANT_UNPARSABLE, WANT_EMPTY };

struct corpus_case {
    enum want want;
    char refused[512]; /* deny:STRING: the first string refused; "" = any */
    char cmd[CASE_MAX];
    size_t len;
    unsigned line; /* where the case starts */
};

/* Reads the next case from f into c; returns false at the end. The format is the README's:
 * "ACTION<TAB>COMMAND", or "ACTION<TAB><<CASE" and the lines up to a line "CASE". */
static bool read_case(FILE *f, const char *path, unsigned *lineno, struct corpus_case *c)
{
    char line[CASE_MAX];

    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        char *tab, *action;

        (*lineno)++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if ((tab = strchr(line, '\t')) == NULL)
            fail_msg("%s:%u: no TAB after the action", path, *lineno);
        *tab = '\0';
        action = line;
        c->refused[0] = '\0';
        c->line = *lineno;
        if (strcmp(action, "allow") == 0) {
            c->want = WANT_ALLOW;
        } else if (strcmp(action, "deny") == 0) {
            c->want = WANT_DENY;
        } else if (strncmp(action, "deny:", 5) == 0) {
            c->want = WANT_DENY;
            snprintf(c->refused, sizeof(c->refused), "%s", action + 5);
        } else if (strcmp(action, "unparsable") == 0) {
            c->want = WANT_UNPARSABLE;
        } else if (strcmp(action, "empty") == 0) {
            c->want = WANT_EMPTY;
        } else {
            fail_msg("%s:%u: unknown action '%s'", path, *lineno, action);
        }
        if (strcmp(tab + 1, "<<CASE") != 0) {
            c->len = strlen(tab + 1);
            memcpy(c->cmd, tab + 1, c->len + 1);
            return true;
        }
        c->len = 0;
        for (;;) {
            if (fgets(line, sizeof(line), f) == NULL)
                fail_msg("%s:%u: no line CASE ends the block", path, c->line);
            (*lineno)++;
            len = strlen(line);
            if (strcmp(line, "CASE\n") == 0 || strcmp(line, "CASE") == 0)
                break;
            assert_true(c->len + len + 1 < sizeof(c->cmd));
            memcpy(c->cmd + c->len, line, len);
            c->len += len;
        }
        if (c->len > 0 && c->cmd[c->len - 1] == '\n')
            c->len--; /* the block's last newline is not the command's */
        c->cmd[c->len] = '\0';
        return true;
    }
    return false;
}

/* ---- the decisions -------------------------------------------------------- */

/* The case's failure, or "" when the decision is the expected one. */
static void judge(const struct permission_rules *r, const struct corpus_case *c, char *why,
                  size_t whylen)
{
    char err[1024] = "";
    int rc = permission_check(r, c->cmd, err, sizeof(err));
    bool parse_fail = strncmp(err, "failed to parse command: ", 25) == 0;
    bool rule_deny = strncmp(err, "command denied ", 15) == 0;
    static const char *const names[] = {"allow", "deny", "unparsable", "empty"};

    why[0] = '\0';
    if (rc != 0 && rc != ERR_PERMISSION_DENIED) {
        snprintf(why, whylen, "error %d: %s", rc, err);
        return;
    }
    switch (c->want) {
    case WANT_ALLOW:
        if (rc == 0)
            return;
        break;
    case WANT_DENY:
        if (rc != 0 && rule_deny) {
            const char *colon = strstr(err, "): ");
            const char *got = colon != NULL ? colon + 3 : strstr(err, "': ");

            if (colon == NULL && got != NULL)
                got += 3;
            if (c->refused[0] == '\0' || (got != NULL && strcmp(got, c->refused) == 0))
                return;
            snprintf(why, whylen, "want refused [%s], got: %s", c->refused, err);
            return;
        }
        break;
    case WANT_UNPARSABLE:
        if (rc != 0 && parse_fail)
            return;
        break;
    case WANT_EMPTY:
        if (rc != 0 && strcmp(err, "empty command") == 0)
            return;
        break;
    }
    snprintf(why, whylen, "want %s, got: %s", names[c->want], rc == 0 ? "allowed" : err);
}

/* Checks every case of CORPUS_DIR/<set>.cases under CORPUS_DIR/<set>.yaml. */
static void check_rule_set(const char *set)
{
    char rules_path[4096], cases_path[4096], why[1200], err[512];
    struct permission_rules *r = NULL;
    struct corpus_case *c = malloc(sizeof(*c));
    unsigned lineno = 0;
    size_t total = 0, failures = 0, counts[4] = {0};
    FILE *f;

    if (corpus_dir == NULL)
        skip();
    assert_non_null(c);
    snprintf(rules_path, sizeof(rules_path), "%s/%s.yaml", corpus_dir, set);
    snprintf(cases_path, sizeof(cases_path), "%s/%s.cases", corpus_dir, set);
    if (permission_load_file(rules_path, &r, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    if ((f = fopen(cases_path, "r")) == NULL)
        fail_msg("%s: %s", cases_path, strerror(errno));
    while (read_case(f, cases_path, &lineno, c)) {
        total++;
        counts[c->want]++;
        judge(r, c, why, sizeof(why));
        if (why[0] != '\0') {
            print_message("%s:%u: [%s]: %s\n", cases_path, c->line, c->cmd, why);
            failures++;
        }
    }
    fclose(f);
    permission_rules_free(r);
    free(c);
    print_message("%s: %zu cases (%zu allow, %zu deny, %zu unparsable, %zu empty), %zu failures\n",
                  set, total, counts[WANT_ALLOW], counts[WANT_DENY], counts[WANT_UNPARSABLE],
                  counts[WANT_EMPTY], failures);
    assert_true(total >= MIN_CASES);
    assert_int_equal(failures, 0);
}

static void test_permission_corpus_kubectl_ro_decides_as_runner_ops_7_says(void **state)
{
    (void)state;
    check_rule_set("kubectl_ro");
}

static void test_permission_corpus_no_etc_writes_decides_as_runner_ops_7_says(void **state)
{
    (void)state;
    check_rule_set("no_etc_writes");
}

/* ---- the differential against bash ----------------------------------------
 *
 * For each corpus command without dynamic parts (see static_enough), bash runs it in a
 * throwaway sandbox with `set -x` writing to a trace file; the first word of every traced
 * simple command is a name bash ran, and it must be the name of one of the strings
 * shparse gave the rules (a literal name: the first word after the leading assignments).
 *
 * SAFETY. This executes the corpus, which is full of `rm -rf /`, `> /etc/passwd` and
 * `kill -9 -1` on purpose. Nothing the corpus says may reach anything outside the
 * sandbox, and the layers below do not trust shparse (the code under test) for that:
 *   1. no builtin runs: the preamble disables every builtin (`enable -n $(compgen -b)`)
 *      before the command, so eval, exec, source, command, builtin, trap, kill, history,
 *      cd, printf -v, read... are plain names that are not found. A probe run checks this
 *      before any corpus command runs (kill must not be a builtin): if it fails, nothing
 *      runs and the test fails;
 *   2. nothing external is found: PATH is an empty directory, and every name not found
 *      goes to command_not_found_handle, which only assigns a variable;
 *   3. restricted mode (`set -r` in the preamble, as rbash): no command name with a '/'
 *      (/bin/rm), no output redirection (>, >>, >|, <>, &>, >&file), no cd, no PATH
 *      change, no enable -f;
 *   4. as nobody (uid/gid 65534, no groups) when the test runs as root, in new user, pid
 *      and network namespaces: no signal reaches a process outside (the kill -9 -1 case),
 *      no network; the namespace's pid 1 is bash, so its end ends every process left;
 *   5. env -i (only PATH, HOME, TMPDIR, LC_ALL), cwd and HOME an empty directory that
 *      nobody may write, stdin/stdout/stderr /dev/null, a 3 s alarm that kills the
 *      namespace, RLIMIT_FSIZE 1 MiB (the trace), RLIMIT_NPROC 64 (nobody's processes).
 * So the only output is the trace (fd 3, opened by this test), and a corpus command can
 * at worst spin until the alarm. Without the namespaces the differential is skipped, never
 * run with fewer layers. Run as another user than root, layer 4 keeps that user (files
 * writable by that user are then protected by layers 1-3 alone). Never run a corpus
 * command by hand outside this sandbox: `kill -9 -1` as root ends every process. */

#define DIFF_TIMEOUT_S 3
#define TRACE_MAX (1 << 20)

static const char preamble[] = "command_not_found_handle() { __not_found__=1; }\n"
                               "BASH_XTRACEFD=3\n"
                               "set -r\n"
                               "set -x\n"
                               "enable -n $(compgen -b)\n"
                               "__corpus_start__\n";

static volatile sig_atomic_t ns_init_pid;

static void on_alarm(int sig)
{
    (void)sig;
    if (ns_init_pid > 0)
        kill((pid_t)ns_init_pid, SIGKILL);
}

static bool write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);

    if (fd >= 0)
        close(fd);
    return ok;
}

/* The sandbox: runs in a child of the test; exits 0 when bash ran (whatever its
 * status), 100 when a namespace could not be made, 101 when exec failed. */
static void __attribute__((noreturn)) sandbox_run(const char *dir, int trace_fd, const char *script)
{
    char path_env[4200], home_env[4200], tmp_env[4200], cwd[4200];
    char *const argv[] = {"bash", "--norc", "--noprofile", "-c", (char *)script, NULL};
    char *envp[] = {path_env, home_env, tmp_env, "LC_ALL=C", NULL};
    struct rlimit fsize = {TRACE_MAX, TRACE_MAX}, nproc = {64, 64};
    int null = open("/dev/null", O_RDWR);
    uid_t uid = geteuid();
    char map[64];
    pid_t pid;
    int status;

    snprintf(path_env, sizeof(path_env), "PATH=%s/empty", dir);
    snprintf(home_env, sizeof(home_env), "HOME=%s/cwd", dir);
    snprintf(tmp_env, sizeof(tmp_env), "TMPDIR=%s/tmp", dir);
    snprintf(cwd, sizeof(cwd), "%s/cwd", dir);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
        dup2(trace_fd, 3) < 0 || fcntl(3, F_SETFD, 0) != 0) /* dup2(3, 3) keeps CLOEXEC */
        _exit(101);
    if (uid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        uid = 65534;
        /* setuid made us undumpable, and /proc/self/uid_map root's: dumpable again */
        if (prctl(PR_SET_DUMPABLE, 1) != 0)
            _exit(100);
    }
    if (unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET) != 0)
        _exit(100);
    /* nobody stays nobody inside: no capability in the new namespaces either */
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (!write_file("/proc/self/setgroups", "deny") || !write_file("/proc/self/uid_map", map))
        _exit(100);
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)getegid(), (unsigned)getegid());
    if (!write_file("/proc/self/gid_map", map))
        _exit(100);
    if ((pid = fork()) < 0)
        _exit(100);
    if (pid == 0) {
        /* pid 1 of the new namespace: when it ends, the kernel kills the rest */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (chdir(cwd) != 0)
            _exit(102);
        if (setrlimit(RLIMIT_FSIZE, &fsize) != 0 || setrlimit(RLIMIT_NPROC, &nproc) != 0)
            _exit(103);
        execve("/bin/bash", argv, envp);
        _exit(101);
    }
    ns_init_pid = pid;
    signal(SIGALRM, on_alarm);
    alarm(DIFF_TIMEOUT_S);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    /* 101: bash could not be started; otherwise bash ran, whatever its status */
    _exit(WIFEXITED(status) && WEXITSTATUS(status) >= 101 ? WEXITSTATUS(status) : 0);
}

/* Runs the preamble and cmd in the sandbox; the trace, from the marker on, into *trace
 * (malloc'd, NUL-terminated). Returns 0, or 100 (no namespaces) / other on failure. */
static int bash_trace(const char *dir, const char *cmd, char **trace)
{
    char tpath[4200], *script;
    size_t plen = strlen(preamble), clen = strlen(cmd), n = 0;
    int fd, status;
    pid_t pid;
    ssize_t got;
    char *marker;

    *trace = NULL;
    snprintf(tpath, sizeof(tpath), "%s/trace", dir);
    fd = open(tpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_non_null(script = malloc(plen + clen + 1));
    memcpy(script, preamble, plen);
    memcpy(script + plen, cmd, clen + 1);
    if ((pid = fork()) == 0)
        sandbox_run(dir, fd, script);
    free(script);
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        close(fd);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    assert_non_null(*trace = malloc(TRACE_MAX + 1));
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    while (n < TRACE_MAX && (got = read(fd, *trace + n, TRACE_MAX - n)) > 0)
        n += (size_t)got;
    (*trace)[n] = '\0';
    close(fd);
    if ((marker = strstr(*trace, "+ __corpus_start__\n")) == NULL)
        return 2; /* the preamble did not run as written */
    memmove(*trace, marker, strlen(marker) + 1);
    return 0;
}

/* Reads one word of an xtrace line at *p (bash prints a word plain, or in '...' with '\''
 * for a quote, or in $'...'): its value into w. Returns false at the end of the line. */
static bool trace_word(const char **p, char *w, size_t wlen)
{
    const char *s = *p;
    size_t n = 0;

    while (*s == ' ')
        s++;
    if (*s == '\0' || *s == '\n')
        return false;
    while (*s != '\0' && *s != ' ' && *s != '\n') {
        if (s[0] == '\'') {
            for (s++; *s != '\0' && *s != '\''; s++)
                if (n + 1 < wlen)
                    w[n++] = *s;
            if (*s == '\'')
                s++;
        } else if (s[0] == '\\' && s[1] != '\0') {
            if (n + 1 < wlen)
                w[n++] = s[1];
            s += 2;
        } else if (s[0] == '$' && s[1] == '\'') {
            static const char esc[] = "n\nt\tr\ra\ab\be\033E\033f\fv\v\\\\''\"\"";

            for (s += 2; *s != '\0' && *s != '\''; s++) {
                char ch = *s;

                if (ch == '\\' && s[1] != '\0') {
                    const char *e = strchr(esc, s[1]);

                    s++;
                    ch = e != NULL && (e - esc) % 2 == 0 ? e[1] : *s;
                }
                if (n + 1 < wlen)
                    w[n++] = ch;
            }
            if (*s == '\'')
                s++;
        } else {
            if (n + 1 < wlen)
                w[n++] = *s;
            s++;
        }
    }
    w[n] = '\0';
    *p = s;
    return true;
}

/* NAME=, NAME+=, NAME[...]=: an assignment word. */
static bool is_assignment(const char *w)
{
    size_t i = 0;

    if (!(w[0] == '_' || (w[0] >= 'A' && w[0] <= 'Z') || (w[0] >= 'a' && w[0] <= 'z')))
        return false;
    while (w[i] == '_' || (w[i] >= 'A' && w[i] <= 'Z') || (w[i] >= 'a' && w[i] <= 'z') ||
           (w[i] >= '0' && w[i] <= '9'))
        i++;
    if (w[i] == '[') {
        const char *close = strchr(w + i, ']');

        if (close == NULL)
            return false;
        i = (size_t)(close - w) + 1;
    }
    if (w[i] == '+')
        i++;
    return w[i] == '=';
}

/* True when some literal-named command string of r has the name `name`: its text, after
 * the leading assignment words, is name, or starts with name and a space. (Words are joined
 * by spaces, so a name with a space in it is matched whole, as bash traced it.) */
static bool checked_name(const struct shparse_result *r, const char *name)
{
    size_t nlen = strlen(name);

    for (size_t i = 0; i < r->n; i++) {
        const char *t = r->items[i].text;

        if (r->items[i].kind != SHPARSE_COMMAND || !r->items[i].literal_name)
            continue;
        for (;;) {
            char w[512];
            const char *sp = strchr(t, ' ');
            size_t wl = sp != NULL ? (size_t)(sp - t) : strlen(t);

            if (strncmp(t, name, nlen) == 0 && (t[nlen] == '\0' || t[nlen] == ' '))
                return true;
            if (sp == NULL || wl >= sizeof(w))
                break;
            memcpy(w, t, wl);
            w[wl] = '\0';
            if (!is_assignment(w))
                break;
            t = sp + 1;
        }
    }
    return false;
}

/* Which corpus commands the differential runs: those whose command names are all in the
 * text. Decided on the text alone, conservatively (a quoted '*' excludes a command too):
 *   - it parses, and every command string has a literal name (no $cmd, $(cmd) x);
 *   - no parameter expansion: a '$' only as $( (not $(( ), $' or $";
 *   - no arithmetic evaluation, which reads variables whose values may hold a
 *     substitution (x='a[$(id)]'; (( x ))): no "((", "$[", "[[" or "]=" (a subscript);
 *   - no glob, brace or tilde expansion, which may turn a name into another one: no '*',
 *     '?', '[', '~', and no '{' followed by something other than a blank.
 * Commands other commands run need no filter: no builtin runs in the sandbox, so eval,
 * exec, command... are traced as themselves and run nothing. */
static bool static_enough(const char *cmd)
{
    struct shparse_result r;
    bool ok = true;

    if (shparse_parse(cmd, strlen(cmd), &r, NULL, 0) != 0)
        return false;
    for (size_t i = 0; i < r.n; i++)
        if (r.items[i].kind == SHPARSE_COMMAND && !r.items[i].literal_name)
            ok = false;
    shparse_result_free(&r);
    for (const char *s = cmd; ok && *s != '\0'; s++) {
        if (s[0] == '$' && !(s[1] == '\'' || s[1] == '"' || (s[1] == '(' && s[2] != '(')))
            ok = false;
        if (strchr("*?[~", s[0]) != NULL || (s[0] == '(' && s[1] == '(') ||
            (s[0] == ']' && s[1] == '=') ||
            (s[0] == '{' && s[1] != ' ' && s[1] != '\t' && s[1] != '\n'))
            ok = false;
    }
    return ok;
}

/* Every name in the trace (from the marker on) is a checked name of cmd: 0, or the number
 * of names that are not, each printed. */
static size_t compare_trace(const char *cmd, const char *trace, size_t *names)
{
    struct shparse_result r;
    size_t missing = 0;
    const char *p = trace;

    assert_int_equal(shparse_parse(cmd, strlen(cmd), &r, NULL, 0), 0);
    while (*p != '\0') {
        char w[512];
        const char *line = p;

        /* a record starts "+... " at a line start; a quoted word may span lines, and
         * trace_word steps over it whole */
        if (*p != '+') {
            p = strchr(p, '\n');
            p = p != NULL ? p + 1 : line + strlen(line);
            continue;
        }
        while (*p == '+')
            p++;
        if (trace_word(&p, w, sizeof(w)) && strcmp(w, "__corpus_start__") != 0 &&
            strcmp(w, "__not_found__=1") != 0 && !is_assignment(w) && strcmp(w, "[[") != 0 &&
            strcmp(w, "((") != 0 && strcmp(w, "case") != 0 && strcmp(w, "for") != 0 &&
            strcmp(w, "select") != 0) {
            (*names)++;
            if (!checked_name(&r, w)) {
                print_message("differential: bash ran [%s], not a checked name of [%s]\n", w, cmd);
                missing++;
            }
        }
        while (trace_word(&p, w, sizeof(w)))
            ;
        if (*p == '\n')
            p++;
    }
    shparse_result_free(&r);
    return missing;
}

static int mkdir_mode(const char *dir, const char *sub, mode_t mode)
{
    char path[4200];

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    if (mkdir(path, mode) != 0)
        return -1;
    return chmod(path, mode); /* past the umask */
}

static void remove_sandbox(const char *dir)
{
    static const char *const parts[] = {"trace", "empty", "cwd", "tmp"};
    char path[4200];

    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, parts[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    rmdir(dir);
}

/* The sandbox directory, removed by the teardown even when an assertion ends the test. */
static char sandbox_dir[] = "/tmp/permission-corpus-XXXXXX";
static bool sandbox_made;

static int teardown_sandbox(void **state)
{
    (void)state;
    if (sandbox_made)
        remove_sandbox(sandbox_dir);
    sandbox_made = false;
    return 0;
}

static void test_permission_corpus_bash_runs_only_names_shparse_checked(void **state)
{
    static const char *const sets[] = {"kubectl_ro", "no_etc_writes"};
    char *dir = sandbox_dir, *trace;
    size_t run = 0, skipped = 0, names = 0, missing = 0;
    struct corpus_case *c = malloc(sizeof(*c));
    struct timespec t0, t1;
    int rc;

    (void)state;
    if (corpus_dir == NULL || access("/bin/bash", X_OK) != 0)
        skip();
    assert_non_null(c);
    assert_non_null(mkdtemp(dir));
    sandbox_made = true;
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(mkdir_mode(dir, "empty", 0555), 0);
    assert_int_equal(mkdir_mode(dir, "cwd", 0555), 0);
    assert_int_equal(mkdir_mode(dir, "tmp", 01777), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    /* the probe: kill must be a name that is not found, not the builtin */
    rc = bash_trace(dir, "kill -0 1", &trace);
    if (rc == 100) {
        free(c);
        print_message("differential skipped: no user/pid/net namespace here\n");
        skip();
    }
    assert_int_equal(rc, 0);
    if (strstr(trace, "+ kill -0 1\n+ __not_found__=1\n") == NULL)
        fail_msg("the sandbox's builtins are not disabled; trace:\n%s", trace);
    free(trace);

    for (size_t s = 0; s < 2; s++) {
        char path[4096];
        unsigned lineno = 0;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s.cases", corpus_dir, sets[s]);
        assert_non_null(f = fopen(path, "r"));
        while (read_case(f, path, &lineno, c)) {
            size_t m;

            if (!static_enough(c->cmd)) {
                skipped++;
                continue;
            }
            rc = bash_trace(dir, c->cmd, &trace);
            if (rc != 0)
                fail_msg("%s:%u: the sandbox failed (%d)", path, c->line, rc);
            m = compare_trace(c->cmd, trace, &names);
            if (m > 0)
                print_message("  at %s:%u\n", path, c->line);
            missing += m;
            run++;
            free(trace);
        }
        fclose(f);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(c);
    print_message("differential: %zu commands run (%zu names traced), %zu not static, %zu names "
                  "not checked, %.1f s\n",
                  run, names, skipped, missing,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    assert_true(run >= 100);
    assert_int_equal(missing, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permission_corpus_kubectl_ro_decides_as_runner_ops_7_says),
        cmocka_unit_test(test_permission_corpus_no_etc_writes_decides_as_runner_ops_7_says),
        cmocka_unit_test_teardown(test_permission_corpus_bash_runs_only_names_shparse_checked,
                                  teardown_sandbox),
    };

    if (argc == 2)
        corpus_dir = argv[1];
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
