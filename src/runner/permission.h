/*
 * permission.h - the permission rules for bash commands (and MCP stdio servers'
 * command lines): RUNNER-OPS.md section 7.
 *
 * A rule set maps command patterns to allow or deny. permission_check parses a
 * command with shparse (src/runner/shparse.h) and requires every string it yields
 * (each simple command, each write redirection as "> TARGET", each [[ ]] and
 * (( ))) to be allowed:
 *
 *   pattern "*"            matches everything;
 *   no '*'                 matches the string exactly;
 *   ending with '*'        matches every string starting with the pattern minus that
 *                          '*' (any other '*' in it is literal);
 *   any other '*'          a doublestar match of the whole string (dsglob.h: '*' does
 *                          not cross '/'); a malformed pattern matches nothing.
 *
 * Matching is case-sensitive. The most specific matching rule other than "*" decides
 * (specificity: the length of the pattern before its first '*', or its whole length);
 * a tie between allow and deny is deny; "*" decides only when no other rule matches,
 * and nothing matching is deny. A string whose command name is not literal
 * ($cmd x) matches "*" only.
 *
 * Not for: where the rules come from (config.c reads permission.bash; the runner
 * names the file), or running anything.
 */
#ifndef CREDBROKER_PERMISSION_H
#define CREDBROKER_PERMISSION_H

#include <stdbool.h>
#include <stddef.h>

/* A command refused by the rules (err.h has no such code; kept with its module). */
#define ERR_PERMISSION_DENIED (-9060)

#define PERMISSION_FILE_MAX (1024 * 1024) /* bytes in a rules file */
#define PERMISSION_RULES_MAX 10000        /* rules in one set */

enum permission_action { PERMISSION_ALLOW, PERMISSION_DENY };

struct permission_rules; /* opaque: pattern -> action */

/*
 * Reads the rules file at path: YAML whose top level is a mapping with one key,
 * `permission`, a mapping of pattern -> action (allow or deny, any case). Returns 0
 * and *out (free with permission_rules_free), or ERR_* with *out NULL and one line
 * in err: "permission config <path>: <reason>", the reasons of RUNNER-OPS.md 7.1:
 * "<errno text>" (e.g. "no such file or directory"), "parse error at line <n>:
 * <detail>", "no rules under 'permission'", "invalid action '<a>' for pattern
 * '<pattern>' (want allow or deny)", and for any other shape "parse error at line
 * <n>: <what is wrong>". err may be NULL.
 */
int permission_load_file(const char *path, struct permission_rules **out, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

/*
 * The same rules from n pairs (the config era's permission.bash map). Returns 0 and
 * *out, or ERR_INVALID with the reason alone in err ("no rules under 'permission'",
 * "invalid action ...", "duplicate pattern '<p>'"), or ERR_NOMEM. The strings are
 * copied.
 */
int permission_rules_new(const char *const *patterns, const char *const *actions, size_t n,
                         struct permission_rules **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Frees r. Accepts NULL. */
void permission_rules_free(struct permission_rules *r);

/*
 * Checks a bash command (NUL-terminated, as bash -c gets it). Returns 0 when every
 * string of it is allowed; otherwise ERR_PERMISSION_DENIED with one of the Go
 * runner's texts in err:
 *   "command denied by rule '<pattern>': <string>"
 *   "command denied (no matching allow rule): <string>"
 *   "empty command"                    (nothing but white space)
 *   "failed to parse command: <line>:<col>: <message>"
 * or ERR_NOMEM ("out of memory"). <string> is the first string refused, not the
 * whole command. Pure: no I/O, no global state, safe on any thread with a shared r.
 */
int permission_check(const struct permission_rules *r, const char *command, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/* One checked string of a command and what the rules said of it: rule is the deciding
 * pattern, or NULL when no rule matched (denied). */
typedef void (*permission_seen_cb)(const char *text, bool allowed, const char *rule,
                                   void *data);

/*
 * permission_check for a person testing a rules file (`credbroker runner --check-command`):
 * the same answer and text, but every string is decided and given to seen (in the order
 * permission_check checks them), not only up to the first refusal.
 */
int permission_explain(const struct permission_rules *r, const char *command,
                       permission_seen_cb seen, void *data, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
