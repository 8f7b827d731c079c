/*
 * permission.c - the permission rules: loading them (a YAML file, or pairs),
 * matching a pattern, choosing the rule, checking a command. See permission.h.
 *
 * The file is read with libyaml's event parser, as config_yaml.c reads the config:
 * aliases and anything but the one expected shape are refused, so a typo fails the
 * start instead of widening the rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "dsglob.h"
#include "err.h"
#include "permission.h"
#include "shparse.h"

struct rule {
    char *pattern;
    size_t len, specificity; /* specificity: bytes before the first '*' */
    enum permission_action action;
};

struct permission_rules {
    struct rule *v;
    size_t n;
    const struct rule *all; /* the "*" rule, or NULL */
};

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* one line: no control byte of a pattern or a command reaches the log */
    for (char *c = err; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    }
}

void permission_rules_free(struct permission_rules *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].pattern);
    free(r->v);
    free(r);
}

static bool action_of(const char *a, size_t len, enum permission_action *out)
{
    if (len == 5 && strncasecmp(a, "allow", 5) == 0) {
        *out = PERMISSION_ALLOW;
        return true;
    }
    if (len == 4 && strncasecmp(a, "deny", 4) == 0) {
        *out = PERMISSION_DENY;
        return true;
    }
    return false;
}

/* Adds one rule; the reason of a failure goes to err (no prefix). */
static int rules_add(struct permission_rules *r, const char *pattern, size_t plen,
                     const char *action, size_t alen, char *err, size_t errlen)
{
    struct rule *v, *n;
    const char *star;

    if (memchr(pattern, '\0', plen) != NULL) {
        fail(err, errlen, "pattern with a NUL byte");
        return ERR_INVALID;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].len == plen && memcmp(r->v[i].pattern, pattern, plen) == 0) {
            fail(err, errlen, "duplicate pattern '%.200s'", pattern);
            return ERR_INVALID;
        }
    }
    if (r->n >= PERMISSION_RULES_MAX) {
        fail(err, errlen, "more than %d rules", PERMISSION_RULES_MAX);
        return ERR_TOO_LARGE;
    }
    if ((v = realloc(r->v, (r->n + 1) * sizeof(*v))) == NULL) {
        fail(err, errlen, "out of memory");
        return ERR_NOMEM;
    }
    r->v = v;
    n = &r->v[r->n];
    memset(n, 0, sizeof(*n));
    if (!action_of(action, alen, &n->action) || memchr(action, '\0', alen) != NULL) {
        fail(err, errlen, "invalid action '%.100s' for pattern '%.200s' (want allow or deny)",
             action, pattern);
        return ERR_INVALID;
    }
    if ((n->pattern = malloc(plen + 1)) == NULL) {
        fail(err, errlen, "out of memory");
        return ERR_NOMEM;
    }
    memcpy(n->pattern, pattern, plen);
    n->pattern[plen] = '\0';
    n->len = plen;
    star = memchr(pattern, '*', plen);
    n->specificity = star != NULL ? (size_t)(star - pattern) : plen;
    r->n++;
    return 0;
}

static void rules_finish(struct permission_rules *r)
{
    r->all = NULL;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].len == 1 && r->v[i].pattern[0] == '*')
            r->all = &r->v[i];
    }
}

int permission_rules_new(const char *const *patterns, const char *const *actions, size_t n,
                         struct permission_rules **out, char *err, size_t errlen)
{
    struct permission_rules *r;
    int rc;

    *out = NULL;
    if (n == 0) {
        fail(err, errlen, "no rules under 'permission'");
        return ERR_INVALID;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        fail(err, errlen, "out of memory");
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        rc = rules_add(r, patterns[i], strlen(patterns[i]), actions[i], strlen(actions[i]), err,
                       errlen);
        if (rc != 0) {
            permission_rules_free(r);
            return rc;
        }
    }
    rules_finish(r);
    *out = r;
    return 0;
}

/* ---- the file ------------------------------------------------------------ */

struct load {
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev;
    const char *path;
    const char *text;
    size_t len;
    char *err;
    size_t errlen;
};

static int load_fail(struct load *l, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int load_fail(struct load *l, int code, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    fail(l->err, l->errlen, "permission config %.200s: %s", l->path, reason);
    return code;
}

static unsigned long ev_line(const struct load *l)
{
    return (unsigned long)l->ev.start_mark.line + 1;
}

static int load_next(struct load *l)
{
    if (l->have_ev) {
        yaml_event_delete(&l->ev);
        l->have_ev = false;
    }
    if (!yaml_parser_parse(&l->parser, &l->ev)) {
        unsigned long line = (unsigned long)l->parser.problem_mark.line + 1;

        if (l->parser.error == YAML_MEMORY_ERROR)
            return load_fail(l, ERR_NOMEM, "out of memory");
        if (l->parser.error == YAML_READER_ERROR) {
            size_t end = l->parser.problem_offset < l->len ? l->parser.problem_offset : l->len;

            line = 1;
            for (size_t i = 0; i < end; i++)
                line += l->text[i] == '\n';
        }
        return load_fail(l, ERR_INVALID, "parse error at line %lu: %s%s%s%s", line,
                         l->parser.problem != NULL ? l->parser.problem : "unknown problem",
                         l->parser.context != NULL ? " (" : "",
                         l->parser.context != NULL ? l->parser.context : "",
                         l->parser.context != NULL ? ")" : "");
    }
    l->have_ev = true;
    if (l->ev.type == YAML_ALIAS_EVENT)
        return load_fail(l, ERR_INVALID, "parse error at line %lu: aliases are not supported",
                         ev_line(l));
    return 0;
}

static const char *found(const struct load *l)
{
    switch (l->ev.type) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_SCALAR_EVENT:
        return "a single value";
    default:
        return "nothing";
    }
}

static bool is_null(const struct load *l)
{
    const char *v = (const char *)l->ev.data.scalar.value;

    return l->ev.type == YAML_SCALAR_EVENT && l->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
            strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

/* The `permission:` mapping (its start event is current). */
static int load_rules(struct load *l, struct permission_rules *r)
{
    char reason[512];
    char *pattern = NULL;
    size_t plen = 0;
    unsigned long line;
    int rc;

    for (;;) {
        if ((rc = load_next(l)) != 0)
            goto out;
        if (l->ev.type == YAML_MAPPING_END_EVENT)
            break;
        if (l->ev.type != YAML_SCALAR_EVENT) {
            rc = load_fail(l, ERR_INVALID, "parse error at line %lu: a pattern must be a single "
                                           "value, found %s", ev_line(l), found(l));
            goto out;
        }
        plen = l->ev.data.scalar.length;
        if ((pattern = malloc(plen + 1)) == NULL) {
            rc = load_fail(l, ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(pattern, l->ev.data.scalar.value, plen);
        pattern[plen] = '\0';
        if ((rc = load_next(l)) != 0)
            goto out;
        line = ev_line(l);
        if (l->ev.type != YAML_SCALAR_EVENT) {
            rc = load_fail(l, ERR_INVALID, "invalid action (%s) for pattern '%.200s' (want "
                                           "allow or deny)", found(l), pattern);
            goto out;
        }
        rc = rules_add(r, pattern, plen, (const char *)l->ev.data.scalar.value,
                       l->ev.data.scalar.length, reason, sizeof(reason));
        if (rc != 0) {
            if (strncmp(reason, "invalid action", 14) == 0 || rc == ERR_NOMEM)
                rc = load_fail(l, rc, "%s", reason);
            else
                rc = load_fail(l, rc, "parse error at line %lu: %s", line, reason);
            goto out;
        }
        free(pattern);
        pattern = NULL;
    }
    rc = 0;
out:
    free(pattern);
    return rc;
}

/* The whole stream: one document, a mapping, whose only key is `permission`. */
static int load_stream(struct load *l, struct permission_rules *r)
{
    bool seen = false;
    int rc;

    if ((rc = load_next(l)) != 0 || (rc = load_next(l)) != 0) /* stream, document start */
        return rc;
    if (l->ev.type == YAML_STREAM_END_EVENT)
        return load_fail(l, ERR_INVALID, "no rules under 'permission'");
    if ((rc = load_next(l)) != 0)
        return rc;
    if (l->ev.type == YAML_SCALAR_EVENT && is_null(l))
        return load_fail(l, ERR_INVALID, "no rules under 'permission'");
    if (l->ev.type != YAML_MAPPING_START_EVENT)
        return load_fail(l, ERR_INVALID, "parse error at line %lu: expected a mapping with "
                                         "'permission', found %s", ev_line(l), found(l));
    for (;;) {
        if ((rc = load_next(l)) != 0)
            return rc;
        if (l->ev.type == YAML_MAPPING_END_EVENT)
            break;
        if (l->ev.type != YAML_SCALAR_EVENT ||
            strcmp((const char *)l->ev.data.scalar.value, "permission") != 0 ||
            l->ev.data.scalar.length != strlen("permission")) {
            return load_fail(l, ERR_INVALID, "parse error at line %lu: unexpected key (want "
                                             "only 'permission')", ev_line(l));
        }
        if (seen)
            return load_fail(l, ERR_INVALID, "parse error at line %lu: 'permission' given twice",
                             ev_line(l));
        seen = true;
        if ((rc = load_next(l)) != 0)
            return rc;
        if (is_null(l))
            continue;
        if (l->ev.type != YAML_MAPPING_START_EVENT)
            return load_fail(l, ERR_INVALID, "parse error at line %lu: 'permission' must be a "
                                             "mapping of pattern to allow or deny, found %s",
                             ev_line(l), found(l));
        if ((rc = load_rules(l, r)) != 0)
            return rc;
    }
    if ((rc = load_next(l)) != 0) /* document end */
        return rc;
    if ((rc = load_next(l)) != 0)
        return rc;
    if (l->ev.type != YAML_STREAM_END_EVENT)
        return load_fail(l, ERR_INVALID, "parse error at line %lu: more than one document",
                         ev_line(l));
    if (r->n == 0)
        return load_fail(l, ERR_INVALID, "no rules under 'permission'");
    return 0;
}

/* Reads the whole file: at most PERMISSION_FILE_MAX bytes. */
static int read_file(struct load *l, char **text, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd, rc = 0;

    *text = NULL;
    if ((fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        goto sys;
    if (fstat(fd, &st) != 0)
        goto sys;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto sys;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = load_fail(l, ERR_INVALID, "not a regular file");
        goto out;
    }
    if ((buf = malloc(PERMISSION_FILE_MAX + 1)) == NULL) {
        rc = load_fail(l, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t got = read(fd, buf + n, PERMISSION_FILE_MAX + 1 - n);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto sys;
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > PERMISSION_FILE_MAX) {
            rc = load_fail(l, ERR_TOO_LARGE, "larger than %d bytes", PERMISSION_FILE_MAX);
            goto out;
        }
    }
    *text = buf;
    *len = n;
    buf = NULL;
    goto out;
sys: {
    char msg[128];

    rc = -errno;
    /* Go's error text: strerror with its first letter in lower case */
    snprintf(msg, sizeof(msg), "%s", strerror(errno));
    if (msg[0] >= 'A' && msg[0] <= 'Z')
        msg[0] = (char)(msg[0] - 'A' + 'a');
    load_fail(l, rc, "%s", msg);
}
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int permission_load_file(const char *path, struct permission_rules **out, char *err,
                         size_t errlen)
{
    struct load l = {0};
    struct permission_rules *r = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    l.path = path;
    l.err = err;
    l.errlen = errlen;
    if ((rc = read_file(&l, &text, &len)) != 0)
        return rc;
    l.text = text;
    l.len = len;
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        free(text);
        return load_fail(&l, ERR_NOMEM, "out of memory");
    }
    if (!yaml_parser_initialize(&l.parser)) {
        free(text);
        free(r);
        return load_fail(&l, ERR_NOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&l.parser, (const unsigned char *)text, len);
    rc = load_stream(&l, r);
    if (l.have_ev)
        yaml_event_delete(&l.ev);
    yaml_parser_delete(&l.parser);
    free(text);
    if (rc != 0) {
        permission_rules_free(r);
        return rc;
    }
    rules_finish(r);
    *out = r;
    return 0;
}

/* ---- matching ------------------------------------------------------------ */

/*
 * matchPattern: 1 when pattern matches s, 0 when not. A doublestar match that runs
 * out of its step budget counts as a match for a deny rule and not for an allow
 * rule: it fails closed either way.
 */
static bool rule_matches(const struct rule *r, const char *s, size_t len)
{
    int m;

    if (r->len == 1 && r->pattern[0] == '*')
        return true;
    if (r->specificity == r->len)
        return r->len == len && memcmp(r->pattern, s, len) == 0;
    if (r->pattern[r->len - 1] == '*')
        return len >= r->len - 1 && memcmp(r->pattern, s, r->len - 1) == 0;
    if (!dsglob_valid(r->pattern))
        return false;
    m = dsglob_match(r->pattern, s);
    return m < 0 ? r->action == PERMISSION_DENY : m == 1;
}

/* Chooses the rule for one string (RUNNER-OPS.md 7.4): the deciding rule, or NULL when
 * none matches. */
static const struct rule *decide(const struct permission_rules *rs, const struct shparse_item *it)
{
    const struct rule *best = NULL;

    if (it->literal_name) {
        for (size_t i = 0; i < rs->n; i++) {
            const struct rule *r = &rs->v[i];

            if (r == rs->all || !rule_matches(r, it->text, it->len))
                continue;
            if (best == NULL || r->specificity > best->specificity)
                best = r;
            else if (r->specificity == best->specificity &&
                     (r->action == PERMISSION_DENY) > (best->action == PERMISSION_DENY))
                best = r; /* a tie between allow and deny is deny */
            else if (r->specificity == best->specificity && r->action == best->action &&
                     strcmp(r->pattern, best->pattern) < 0)
                best = r; /* the same text whatever the order of the rules */
        }
    }
    return best != NULL ? best : rs->all;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* permission_check's work: every string decided when seen is given, else up to the first
 * refusal. */
static int check(const struct permission_rules *rs, const char *command, permission_seen_cb seen,
                 void *data, char *err, size_t errlen)
{
    struct shparse_result res;
    char perr[SHPARSE_ERR_MAX];
    size_t len = strlen(command), i;
    int rc;

    for (i = 0; i < len && is_space(command[i]); i++)
        ;
    if (i == len) {
        fail(err, errlen, "empty command");
        return ERR_PERMISSION_DENIED;
    }
    rc = shparse_parse(command, len, &res, perr, sizeof(perr));
    if (rc == ERR_NOMEM) {
        fail(err, errlen, "out of memory");
        return ERR_NOMEM;
    }
    if (rc != 0) {
        fail(err, errlen, "failed to parse command: %s", perr);
        return ERR_PERMISSION_DENIED;
    }
    rc = 0;
    for (i = 0; i < res.n && (rc == 0 || seen != NULL); i++) {
        const struct rule *r = decide(rs, &res.items[i]);
        bool allowed = r != NULL && r->action != PERMISSION_DENY;

        if (seen != NULL)
            seen(res.items[i].text, allowed, r != NULL ? r->pattern : NULL, data);
        if (allowed || rc != 0)
            continue;
        if (r == NULL)
            fail(err, errlen, "command denied (no matching allow rule): %s", res.items[i].text);
        else
            fail(err, errlen, "command denied by rule '%s': %s", r->pattern, res.items[i].text);
        rc = ERR_PERMISSION_DENIED;
    }
    shparse_result_free(&res);
    return rc;
}

int permission_check(const struct permission_rules *rs, const char *command, char *err,
                     size_t errlen)
{
    return check(rs, command, NULL, NULL, err, errlen);
}

int permission_explain(const struct permission_rules *rs, const char *command,
                       permission_seen_cb seen, void *data, char *err, size_t errlen)
{
    return check(rs, command, seen, data, err, errlen);
}
