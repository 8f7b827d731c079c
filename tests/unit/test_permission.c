/*
 * Unit tests for src/runner/permission.c: RUNNER-OPS.md 7.8's table, every place 7.5
 * says a command is checked (a deny rule on the inner command fires), quoting that
 * must not walk around a rule, matching (7.3), choosing the rule (7.4) and the rules
 * file's errors (7.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "permission.h"

#define MAXR 8

struct rs {
    const char *p[MAXR], *a[MAXR];
};

static struct permission_rules *mk(const struct rs *s)
{
    struct permission_rules *r = NULL;
    char err[256];
    size_t n = 0;

    while (n < MAXR && s->p[n] != NULL)
        n++;
    if (permission_rules_new(s->p, s->a, n, &r, err, sizeof(err)) != 0)
        fail_msg("rules: %s", err);
    return r;
}

/* want: NULL = allowed, else the exact error text. */
static void check(const struct rs *s, const char *cmd, const char *want)
{
    struct permission_rules *r = mk(s);
    char err[512] = "";
    int rc = permission_check(r, cmd, err, sizeof(err));

    if (want == NULL && rc != 0)
        fail_msg("[%s]: refused (%s), want allowed", cmd, err);
    if (want != NULL && (rc != ERR_PERMISSION_DENIED || strcmp(err, want) != 0))
        fail_msg("[%s]: %d [%s], want [%s]", cmd, rc, err, want);
    permission_rules_free(r);
}

static const struct rs ls_grep = {{"*", "ls *", "grep *"}, {"deny", "allow", "allow"}};
static const struct rs echo_only = {{"echo *", "*"}, {"allow", "deny"}};

static void test_permission_passes_the_table_of_runner_ops_7_8(void **state)
{
    (void)state;
    check(&ls_grep, "ls -l | grep foo", NULL);
    /* 7.8 writes `ls; whoami`; by 7.3 "ls *" does not match a bare `ls`, which is then
     * the first string refused: the rows are checked with `ls -l`, and `ls` apart */
    check(&ls_grep, "ls -l; whoami", "command denied by rule '*': whoami");
    check(&ls_grep, "ls -l && whoami", "command denied by rule '*': whoami");
    check(&ls_grep, "ls -l | whoami", "command denied by rule '*': whoami");
    check(&ls_grep, "ls; whoami", "command denied by rule '*': ls");
    check(&(struct rs){{"ls -l"}, {"allow"}}, "ls    -l", NULL);
    check(&(struct rs){{"Git *", "*"}, {"allow", "deny"}}, "git status",
          "command denied by rule '*': git status");
    check(&(struct rs){{"kubectl*", "kubectl get *"}, {"deny", "allow"}}, "kubectl get pods",
          NULL);
    check(&(struct rs){{"cat *", "cat *.log"}, {"allow", "deny"}}, "cat x.log",
          "command denied by rule 'cat *.log': cat x.log");
    check(&echo_only, "echo x > /etc/passwd", "command denied by rule '*': > /etc/passwd");
    check(&echo_only, "echo $(whoami)", "command denied by rule '*': whoami");
    check(&echo_only, "export A=1", "command denied by rule '*': export A=1");
    check(&(struct rs){{"ls", "ls *"}, {"allow", "deny"}}, "ls", NULL);
    check(&(struct rs){{"ls *"}, {"allow"}}, "cat x",
          "command denied (no matching allow rule): cat x");
    check(&ls_grep, "echo $(", "failed to parse command: 1:6: unexpected EOF while looking for "
                               "matching `)'");
    check(&(struct rs){{"*"}, {"allow"}}, "echo $(",
          "failed to parse command: 1:6: unexpected EOF while looking for matching `)'");
}

static void test_permission_sees_through_quoting(void **state)
{
    static const struct rs rm = {{"rm *", "*"}, {"deny", "allow"}};
    static const char *const spellings[] = {"\\rm -rf /", "'rm' -rf /", "r''m -rf /",
                                            "$'rm' -rf /", "\"rm\" -rf /", "r\\\nm -rf /",
                                            "$'\\x72m' -rf /", "$\"rm\" -rf /"};

    (void)state;
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++)
        check(&rm, spellings[i], "command denied by rule 'rm *': rm -rf /");
    check(&(struct rs){{"> /etc/*", "*"}, {"deny", "allow"}}, "echo x > \"/etc/hosts\"",
          "command denied by rule '> /etc/*': > /etc/hosts");
    check(&(struct rs){{"> /etc/*", "*"}, {"deny", "allow"}}, "echo x >'/etc/'hosts",
          "command denied by rule '> /etc/*': > /etc/hosts");
    /* a name that is not literal matches "*" only */
    check(&(struct rs){{"$cmd *", "*"}, {"allow", "deny"}}, "$cmd x",
          "command denied by rule '*': $cmd x");
    check(&(struct rs){{"$cmd *"}, {"allow"}}, "$cmd x",
          "command denied (no matching allow rule): $cmd x");
    check(&(struct rs){{"*"}, {"allow"}}, "$cmd x", NULL);
    check(&(struct rs){{"x=* ls", "*"}, {"allow", "deny"}}, "x=$(id) ls",
          "command denied by rule '*': x=$(id) ls");
    /* eval and sh -c are matched as the outer command */
    check(&(struct rs){{"rm *", "*"}, {"deny", "allow"}}, "eval 'rm -rf /'", NULL);
    check(&(struct rs){{"eval *", "sh *", "*"}, {"deny", "deny", "allow"}}, "eval 'rm -rf /'",
          "command denied by rule 'eval *': eval rm -rf /");
    check(&(struct rs){{"eval *", "sh *", "*"}, {"deny", "deny", "allow"}}, "sh -c 'rm x'",
          "command denied by rule 'sh *': sh -c rm x");
}

/* Every place of 7.5: a deny rule on the inner command fires. */
static void test_permission_checks_every_command_wherever_it_stands(void **state)
{
    static const struct rs deny_x = {{"x", "x *", "*"}, {"deny", "deny", "allow"}};
    static const char *const places[] = {
        "a | x", "a && x", "a || x", "a; x", "a & x", "(x)", "{ x; }", "if x; then a; fi",
        "if a; then x; fi", "if a; then b; else x; fi", "if a; then b; elif x; then c; fi",
        "for i in 1; do x; done", "for ((;;)); do x; done", "while x; do a; done",
        "until a; do x; done", "select i in 1; do x; done", "case a in a) x;; esac",
        "f() { x; }", "function f { x; }", "time x", "time -p x", "! x", "coproc x",
        "coproc n { x; }", "echo $(x)", "echo `x`", "cat <(x)", "tee >(x)", "echo $(( $(x) ))",
        "echo $[ $(x) ]", "echo \"$(x)\"", "echo ${a:-$(x)}", "echo ${a[$(x)]}", "a[$(x)]=1",
        "a=$(x)", "a=($(x))", "export a=$(x)", "echo > $(x)", "cat < $(x)", "cat <<< $(x)",
        "case $(x) in a) ;; esac", "case a in $(x)) ;; esac", "for i in $(x); do :; done",
        "cat <<E\n$(x)\nE", "cat <<E\n`x`\nE", "[[ $(x) ]]", "(( $(x) ))", "echo $(echo $(x))",
        "echo `echo \\`x\\``", "echo $((x) )", "x=1; x", "> o x",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
        struct permission_rules *r = mk(&deny_x);
        char err[512] = "";

        if (permission_check(r, places[i], err, sizeof(err)) != ERR_PERMISSION_DENIED ||
            strncmp(err, "command denied by rule 'x", 25) != 0)
            fail_msg("[%s]: %s, want denied by 'x' or 'x *'", places[i], err);
        permission_rules_free(r);
    }
    /* a quoted here-document is text */
    check(&deny_x, "cat <<'E'\n$(x)\nE", NULL);
}

static void test_permission_gates_declarations_tests_arithmetic_and_write_targets(void **state)
{
    static const struct rs deny_all = {{"*"}, {"deny"}};

    (void)state;
    check(&deny_all, "declare -a x=(1 2)", "command denied by rule '*': declare -a x=(1 2)");
    check(&deny_all, "local x=1", "command denied by rule '*': local x=1");
    check(&deny_all, "readonly x", "command denied by rule '*': readonly x");
    check(&deny_all, "typeset x", "command denied by rule '*': typeset x");
    check(&deny_all, "let 'a = 1'", "command denied by rule '*': let a = 1");
    check(&deny_all, "x=1", "command denied by rule '*': x=1");
    check(&deny_all, "[[ -f \"x\" ]]", "command denied by rule '*': [[ -f x ]]");
    check(&deny_all, "(( i++ ))", "command denied by rule '*': (( i++ ))");
    check(&deny_all, "> x", "command denied by rule '*': > x");
    check(&deny_all, "# nothing to run", NULL);
    {
        static const struct rs echo = {{"echo *", "> /tmp/*", "*"}, {"allow", "allow", "deny"}};
        static const char *const writes[] = {"echo a > /etc/x", "echo a >> /etc/x",
                                             "echo a >| /etc/x", "echo a &> /etc/x",
                                             "echo a &>> /etc/x", "echo a 2> /etc/x",
                                             "echo a 2>> /etc/x", "echo a <> /etc/x",
                                             "echo a >&/etc/x", "echo a {fd}>/etc/x"};

        for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
            check(&echo, writes[i], "command denied by rule '*': > /etc/x");
        check(&echo, "echo a > /tmp/x 2>&1 >&2 2>&- < /etc/x <<< y", NULL);
        check(&echo, "echo a <<E\nb\nE", NULL);
    }
}

static void test_permission_matches_patterns_as_runner_ops_7_3(void **state)
{
    static const struct {
        const char *pattern, *cmd;
        bool match;
    } m[] = {
        {"*", "anything at all", true},
        {"ls", "ls", true},
        {"ls", "ls -l", false},
        {"git *", "git status", true},
        {"git *", "git", false},
        {"**", "'*x'", true}, /* quoted: a literal '*' (bare, *x is a glob: '*' only) */
        {"**", "x", false},
        {"a*b*", "'a*bc'", true},
        {"a*b*", "axbc", false},
        {"*.txt", "file.txt", true},
        {"cat *.log", "cat x.log", true},
        {"cat *.log", "cat a/x.log", false},
        {"cat *.{log,txt}", "cat x.txt", true},
        {"cat [*.log", "cat [x.log", false}, /* malformed: matches nothing */
        {"Git *", "git status", false},
        {"l?", "ls", false}, /* no '*': exact */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        struct rs s = {{m[i].pattern}, {"allow"}};
        struct permission_rules *r = mk(&s);
        char err[512];
        int rc = permission_check(r, m[i].cmd, err, sizeof(err));

        if ((rc == 0) != m[i].match)
            fail_msg("'%s' on [%s]: %s, want %s", m[i].pattern, m[i].cmd,
                     rc == 0 ? "match" : err, m[i].match ? "match" : "none");
        permission_rules_free(r);
    }
}

static void test_permission_chooses_the_most_specific_rule(void **state)
{
    (void)state;
    check(&(struct rs){{"kubectl *", "kubectl delete *"}, {"allow", "deny"}},
          "kubectl delete pod x", "command denied by rule 'kubectl delete *': kubectl delete pod x");
    check(&(struct rs){{"kubectl delete *", "kubectl *"}, {"deny", "allow"}}, "kubectl get pods",
          NULL);
    check(&(struct rs){{"*", "kubectl get *"}, {"deny", "allow"}}, "kubectl get pods", NULL);
    check(&(struct rs){{"*", "kubectl *"}, {"allow", "deny"}}, "kubectl get pods",
          "command denied by rule 'kubectl *': kubectl get pods");
    /* a tie between allow and deny is deny, whatever the order */
    check(&(struct rs){{"cat *.log", "cat *"}, {"deny", "allow"}}, "cat x.log",
          "command denied by rule 'cat *.log': cat x.log");
    check(&(struct rs){{"a *", "a *b"}, {"deny", "allow"}}, "a xb",
          "command denied by rule 'a *': a xb");
    /* an exact rule is as specific as its length */
    check(&(struct rs){{"ls *", "ls -l"}, {"deny", "allow"}}, "ls -l", NULL);
    check(&(struct rs){{"*"}, {"deny"}}, "ls", "command denied by rule '*': ls");
    check(&(struct rs){{"ls*"}, {"allow"}}, "lsof", NULL);
    /* actions are case-insensitive */
    check(&(struct rs){{"ls *", "*"}, {"ALLOW", "Deny"}}, "ls x", NULL);
}

static void test_permission_refuses_empty_commands(void **state)
{
    (void)state;
    check(&(struct rs){{"*"}, {"allow"}}, "", "empty command");
    check(&(struct rs){{"*"}, {"allow"}}, " \t\n ", "empty command");
}

static void test_permission_rules_new_refuses_bad_actions_and_no_rules(void **state)
{
    struct permission_rules *r = (void *)1;
    const char *p[] = {"ls *", "ls *"}, *a[] = {"allow", "ask"};
    char err[256];

    (void)state;
    assert_int_equal(permission_rules_new(p, a, 0, &r, err, sizeof(err)), ERR_INVALID);
    assert_null(r);
    assert_string_equal(err, "no rules under 'permission'");
    assert_int_equal(permission_rules_new(p + 1, a + 1, 1, &r, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "invalid action 'ask' for pattern 'ls *' (want allow or deny)");
    assert_int_equal(permission_rules_new(p, a, 2, &r, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "duplicate pattern 'ls *'");
    permission_rules_free(NULL);
}

/* ---- the rules file ----------------------------------------------------- */

static char *write_tmp(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/test_permission_XXXXXX");
    assert_true((fd = mkstemp(path)) >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void load_fails(const char *text, const char *reason)
{
    struct permission_rules *r = (void *)1;
    char *path = write_tmp(text), err[512], want[512];

    assert_int_not_equal(permission_load_file(path, &r, err, sizeof(err)), 0);
    assert_null(r);
    snprintf(want, sizeof(want), "permission config %s: %s", path, reason);
    if (strcmp(err, want) != 0)
        fail_msg("[%s]: [%s], want [%s]", text, err, want);
    unlink(path);
}

static void test_permission_load_file_reads_the_rules(void **state)
{
    struct permission_rules *r = NULL;
    char *path = write_tmp("# rules\npermission:\n  \"kubectl get *\": allow\n  'kubectl *': "
                           "DENY\n  \"*\": Allow\n"),
         err[512] = "";

    (void)state;
    assert_int_equal(permission_load_file(path, &r, err, sizeof(err)), 0);
    assert_int_equal(permission_check(r, "kubectl get pods | grep x", err, sizeof(err)), 0);
    assert_int_equal(permission_check(r, "kubectl delete pod x", err, sizeof(err)),
                     ERR_PERMISSION_DENIED);
    assert_string_equal(err, "command denied by rule 'kubectl *': kubectl delete pod x");
    permission_rules_free(r);
    unlink(path);
}

static void test_permission_load_file_says_what_is_wrong(void **state)
{
    struct permission_rules *r = (void *)1;
    char err[512];

    (void)state;
    assert_int_equal(permission_load_file("/nonexistent/permission.yaml", &r, err, sizeof(err)),
                     -2 /* -ENOENT */);
    assert_null(r);
    assert_string_equal(err, "permission config /nonexistent/permission.yaml: no such file or "
                             "directory");
    assert_int_not_equal(permission_load_file("/tmp", &r, err, sizeof(err)), 0);
    assert_string_equal(err, "permission config /tmp: is a directory");
    load_fails("permission:\n  \"a: allow\n", "parse error at line 3: found unexpected end of "
                                             "stream (while scanning a quoted scalar)");
    load_fails("permission:\n  a: allow\n b: deny\n",
               "parse error at line 3: did not find expected key (while parsing a block mapping)");
    load_fails("", "no rules under 'permission'");
    load_fails("permission:\n", "no rules under 'permission'");
    load_fails("permission: {}\n", "no rules under 'permission'");
    load_fails("permission:\n  \"ls *\": ask\n",
               "invalid action 'ask' for pattern 'ls *' (want allow or deny)");
    load_fails("permission:\n  \"ls *\": \"\"\n",
               "invalid action '' for pattern 'ls *' (want allow or deny)");
    load_fails("permission:\n  \"ls *\": [allow]\n",
               "invalid action (a list) for pattern 'ls *' (want allow or deny)");
    load_fails("permission:\n  a: allow\n  a: deny\n",
               "parse error at line 3: duplicate pattern 'a'");
    load_fails("permission:\n  bash:\n    a: allow\n",
               "invalid action (a mapping) for pattern 'bash' (want allow or deny)");
    load_fails("permission: allow\n", "parse error at line 1: 'permission' must be a mapping of "
                                      "pattern to allow or deny, found a single value");
    load_fails("- a\n", "parse error at line 1: expected a mapping with 'permission', found a "
                        "list");
    load_fails("other: 1\n", "parse error at line 1: unexpected key (want only 'permission')");
    load_fails("permission:\n  a: &x allow\n  b: *x\n",
               "parse error at line 3: aliases are not supported");
    load_fails("permission:\n  a: allow\n---\npermission:\n  b: allow\n",
               "parse error at line 3: more than one document");
    load_fails("permission:\n  [a]: allow\n",
               "parse error at line 2: a pattern must be a single value, found a list");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permission_passes_the_table_of_runner_ops_7_8),
        cmocka_unit_test(test_permission_sees_through_quoting),
        cmocka_unit_test(test_permission_checks_every_command_wherever_it_stands),
        cmocka_unit_test(test_permission_gates_declarations_tests_arithmetic_and_write_targets),
        cmocka_unit_test(test_permission_matches_patterns_as_runner_ops_7_3),
        cmocka_unit_test(test_permission_chooses_the_most_specific_rule),
        cmocka_unit_test(test_permission_refuses_empty_commands),
        cmocka_unit_test(test_permission_rules_new_refuses_bad_actions_and_no_rules),
        cmocka_unit_test(test_permission_load_file_reads_the_rules),
        cmocka_unit_test(test_permission_load_file_says_what_is_wrong),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
