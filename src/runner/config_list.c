/*
 * config_list.c - the runner's list-valued keys (broker.env_deny, broker.secret_paths,
 * webfetch.allow_hosts) and labels: each item checked, from a YAML sequence or from the
 * text form ("A,B_*", "k=v,k2=v2") that the environment and flags give. See
 * config_internal.h.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"
#include "err.h"

static int strv_push(struct strv *s, const char *p, size_t len)
{
    char **nv, *copy;

    if ((copy = strndup(p, len)) == NULL)
        return ERR_NOMEM;
    if ((nv = reallocarray(s->v, s->n + 1, sizeof(*nv))) == NULL) {
        free(copy);
        return ERR_NOMEM;
    }
    s->v = nv;
    s->v[s->n++] = copy;
    return 0;
}

/*
 * Checks one item of a list (or a label's name, with value NULL) before it is
 * kept. Returns 0 or ERR_INVALID with err.
 */
int config__check_item(const struct key_def *d, const char *v, size_t len, const struct where *w)
{
    char q[CONFIG_SHOWN_MAX + 4];

    if (len == 0)
        return config__fail(w, d->key, ERR_INVALID,
                            d->kind == KIND_LABELS ? "a label has an empty name"
                                                   : "an item is empty");
    if (len > CONFIG_VALUE_MAX)
        return config__fail(w, d->key, ERR_INVALID, "an item is longer than %d bytes",
                            CONFIG_VALUE_MAX);
    if (memchr(v, '\0', len) != NULL || config__has_control(v, len))
        return config__fail(w, d->key, ERR_INVALID, "'%s' contains a control byte",
                            config__shown(q, sizeof(q), v, len));
    if (d->off == offsetof(struct runner_config, broker.env_deny) && memchr(v, '=', len) != NULL)
        return config__fail(w, d->key, ERR_INVALID,
                            "'%s' contains '=' and so matches no variable name",
                            config__shown(q, sizeof(q), v, len));
    if (d->off == offsetof(struct runner_config, broker.secret_paths) && v[0] != '/')
        return config__fail(w, d->key, ERR_INVALID, "'%s' is not an absolute path",
                            config__shown(q, sizeof(q), v, len));
    return 0;
}

static int check_label_value(const char *v, size_t len, const struct where *w)
{
    if (len > CONFIG_VALUE_MAX)
        return config__fail(w, "labels", ERR_INVALID, "a value is longer than %d bytes",
                            CONFIG_VALUE_MAX);
    if (memchr(v, '\0', len) != NULL || config__has_control(v, len))
        return config__fail(w, "labels", ERR_INVALID, "a value contains a control byte");
    return 0;
}

/* Appends one item (for labels: a name and a value) after checking it. */
int config__list_add(const struct key_def *d, struct strv *items, struct strv *values,
                     const char *v, size_t len, const char *val, size_t val_len,
                     const struct where *w)
{
    char q[CONFIG_SHOWN_MAX + 4];
    int r;

    if (items->n >= CONFIG_LIST_MAX)
        return config__fail(w, d->key, ERR_INVALID, "more than %d items", CONFIG_LIST_MAX);
    if ((r = config__check_item(d, v, len, w)) != 0)
        return r;
    if (d->kind == KIND_LABELS) {
        if ((r = check_label_value(val, val_len, w)) != 0)
            return r;
        for (size_t i = 0; i < items->n; i++) {
            if (strlen(items->v[i]) == len && memcmp(items->v[i], v, len) == 0)
                return config__fail(w, d->key, ERR_INVALID, "label '%s' is given twice",
                                    config__shown(q, sizeof(q), v, len));
        }
        if ((r = strv_push(values, val, val_len)) != 0)
            return config__fail(w, d->key, r, "%s", err_str(r));
    }
    if ((r = strv_push(items, v, len)) != 0) {
        if (d->kind == KIND_LABELS)
            free(values->v[--values->n]);
        return config__fail(w, d->key, r, "%s", err_str(r));
    }
    return 0;
}

/* Replaces the list (or the labels) with items (and values); takes them over. */
void config__list_replace(struct runner_config *c, const struct key_def *d, struct strv *items,
                          struct strv *values)
{
    if (d->kind == KIND_LABELS) {
        config__strv_free(c->label_keys, c->nlabels);
        config__strv_free(c->label_values, c->nlabels);
        c->label_keys = items->v;
        c->label_values = values->v;
        c->nlabels = items->n;
        values->v = NULL; /* transferred */
        values->n = 0;
    } else {
        char ***list = config__field(c, d);
        size_t *count = (size_t *)((char *)c + d->count_off);

        config__strv_free(*list, *count);
        *list = items->v;
        *count = items->n;
    }
    items->v = NULL; /* transferred */
    items->n = 0;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/*
 * The text form of a list: "A,B_*", or for labels "k=v,k2=v2" (a bare "k"
 * has value ""). Items are trimmed of spaces; empty items are skipped.
 */
int config__set_list_text(struct runner_config *c, const struct key_def *d, const char *v,
                          size_t len, const struct where *w)
{
    struct strv items = {NULL, 0}, values = {NULL, 0};
    const char *p = v, *end = v + len;
    int r = 0;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma != NULL ? comma : end;
        const char *ib = p, *ie = item_end, *vb = item_end, *ve = item_end;

        p = comma != NULL ? comma + 1 : end;
        if (d->kind == KIND_LABELS) {
            const char *eq = memchr(ib, '=', (size_t)(ie - ib));

            if (eq != NULL) {
                vb = eq + 1;
                ie = eq;
            }
            while (vb < ve && is_blank(*vb))
                vb++;
            while (ve > vb && is_blank(ve[-1]))
                ve--;
        }
        while (ib < ie && is_blank(*ib))
            ib++;
        while (ie > ib && is_blank(ie[-1]))
            ie--;
        if (ie == ib && vb == ve)
            continue;
        r = config__list_add(d, &items, &values, ib, (size_t)(ie - ib), vb, (size_t)(ve - vb), w);
        if (r != 0)
            goto out;
    }
    config__list_replace(c, d, &items, &values);
out:
    config__strv_free(items.v, items.n);
    config__strv_free(values.v, values.n);
    return r;
}
