/*
 * fuzz_jsonrpc.c - the JSON-RPC 2.0 peer (jsonrpc.h): what a server may send, against
 * this file's own reading of the contract.
 *
 * Input: [flags][segment]\0[segment]\0... A peer (max message 1024 bytes) makes calls
 * 1..3 first. A segment starting with 0x01 forgets call (next byte % 8 + 1), 0x02 fails
 * all calls, 0x03 makes one more call, 0x04 turns send failures on or off; any other
 * segment is one message for jsonrpc_peer_receive. Flags: bit 0, every result callback
 * makes a new call; bit 1, call 2's callback fails all; bit 2, call 2's callback frees
 * the peer; bit 3, every callback forgets the call made after its own.
 *
 * Properties: never crashes; each call's callback runs at most once, with exactly one
 * of result, err and transport error, and a result or err only from a response of the
 * message being received whose id is that call's and whose result equals it (or error
 * code and message); a refused message (ERR_INVALID exactly when this file's validator
 * says malformed, ERR_TOO_LARGE when over the limit) calls nothing and sends nothing;
 * every message the peer sends is JSON-RPC 2.0: a request with a method and an integer
 * id above every earlier one, a notification never sent here, a response echoing the
 * id of the server request it answers, in order, json_equal, with {} for ping and
 * error -32601 "Method not found" otherwise; each notification is passed on once; after
 * fail_all every call not forgotten has had its one callback and none is pending; the
 * pending count always equals the calls made and not yet called back or forgotten.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "jsonrpc.h"

#define MAX_MSG 1024
#define MAX_CALLS 64
#define SEND_FAILURE (-77)

struct harness;

struct call {
    struct harness *h;
    int64_t id;
    int cbs;     /* callbacks so far */
    bool issued; /* jsonrpc_peer_call returned 0 */
    bool forgotten;
};

struct harness {
    struct jsonrpc_peer *p;
    unsigned flags;
    struct call calls[MAX_CALLS];
    size_t ncalls;
    int64_t last_request_id;
    bool send_fails;
    bool closed;     /* fail_all happened */
    bool freed;      /* a callback freed the peer */
    json_t *cur;     /* the message being received, as this file parsed it; NULL outside */
    json_t *answers; /* responses the peer sent during this receive */
    size_t notes;    /* notifications passed on during this receive */
};

static void make_call(struct harness *h);

static bool is_id(const json_t *v)
{
    return json_is_string(v) || json_is_integer(v) || json_is_real(v);
}

/* This file's own reading of a well-formed message object (jsonrpc.h, JSON-RPC 2.0 4-5). */
static bool valid_object(const json_t *o)
{
    const json_t *v, *m, *id, *res, *err, *par;

    if (!json_is_object(o))
        return false;
    v = json_object_get(o, "jsonrpc");
    m = json_object_get(o, "method");
    id = json_object_get(o, "id");
    res = json_object_get(o, "result");
    err = json_object_get(o, "error");
    par = json_object_get(o, "params");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0 ||
        json_string_length(v) != 3)
        return false;
    if (m != NULL)
        return json_is_string(m) && res == NULL && err == NULL &&
               (par == NULL || json_is_null(par) || json_is_object(par) || json_is_array(par)) &&
               (id == NULL || is_id(id));
    if (id == NULL || (res == NULL) == (err == NULL))
        return false;
    if (!is_id(id) && !(json_is_null(id) && err != NULL))
        return false;
    return err == NULL || (json_is_object(err) && json_is_integer(json_object_get(err, "code")) &&
                           json_is_string(json_object_get(err, "message")));
}

static bool valid_message(const json_t *v)
{
    size_t i;
    const json_t *e;

    if (json_is_object(v))
        return valid_object(v);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    json_array_foreach(v, i, e)
    {
        if (!valid_object(e))
            return false;
    }
    return true;
}

/* Whether JSON id names our call id: an integer, or a real of that integral value. */
static bool names(const json_t *id, int64_t want)
{
    if (json_is_integer(id))
        return json_integer_value(id) == want;
    return json_is_real(id) && json_real_value(id) == (double)want && (int64_t)(double)want == want;
}

static void result_cb(void *ud, const json_t *result, const struct jsonrpc_error *err,
                      const char *transport_error)
{
    struct call *c = ud;
    struct harness *h = c->h;
    bool found = false;

    FUZZ_CHECK(c->issued && !c->forgotten, "callback of call %lld, issued %d forgotten %d",
               (long long)c->id, c->issued, c->forgotten);
    FUZZ_CHECK(++c->cbs == 1, "call %lld called back %d times", (long long)c->id, c->cbs);
    FUZZ_CHECK((result != NULL) + (err != NULL) + (transport_error != NULL) == 1,
               "not exactly one outcome");
    if (transport_error != NULL) {
        FUZZ_CHECK(h->closed, "a transport error without fail_all");
    } else {
        size_t i, n;

        FUZZ_CHECK(h->cur != NULL, "a result outside jsonrpc_peer_receive");
        n = json_is_array(h->cur) ? json_array_size(h->cur) : 1;
        for (i = 0; i < n && !found; i++) {
            const json_t *e = json_is_array(h->cur) ? json_array_get(h->cur, i) : h->cur;
            const json_t *er = json_object_get(e, "error");

            if (json_object_get(e, "method") != NULL || !names(json_object_get(e, "id"), c->id))
                continue;
            if (result != NULL)
                found = json_equal(result, json_object_get(e, "result"));
            else
                found =
                    er != NULL && err->code == json_integer_value(json_object_get(er, "code")) &&
                    strcmp(err->message, json_string_value(json_object_get(er, "message"))) == 0 &&
                    (err->data == NULL ? json_object_get(er, "data") == NULL
                                       : json_equal(err->data, json_object_get(er, "data")));
        }
        FUZZ_CHECK(found, "call %lld got an outcome no response in the message gave",
                   (long long)c->id);
    }
    if ((h->flags & 1) && result != NULL)
        make_call(h);
    if ((h->flags & 8) && (size_t)c->id < h->ncalls && h->calls[c->id].issued &&
        h->calls[c->id].cbs == 0) {
        jsonrpc_peer_forget(h->p, c->id + 1);
        h->calls[c->id].forgotten = true;
    }
    if ((h->flags & 2) && c->id == 2 && !h->closed) {
        h->closed = true;
        jsonrpc_peer_fail_all(h->p, "failed from a callback");
    }
    if ((h->flags & 4) && c->id == 2 && !h->freed) {
        h->freed = true;
        jsonrpc_peer_free(h->p);
    }
}

static void notify_cb(void *ud, const char *method, const json_t *params)
{
    struct harness *h = ud;

    FUZZ_CHECK(h->cur != NULL && method != NULL, "a notification outside receive");
    FUZZ_CHECK(params == NULL || json_is_object(params) || json_is_array(params),
               "params of a wrong type passed on");
    h->notes++;
}

static int send_fn(void *ud, const char *msg, size_t len)
{
    struct harness *h = ud;
    json_error_t je;
    json_t *m = json_loadb(msg, len, 0, &je);
    const json_t *v, *id, *method;

    FUZZ_CHECK(m != NULL && json_is_object(m), "sent something that is not a JSON object");
    FUZZ_CHECK(len <= MAX_MSG, "sent %zu bytes", len);
    v = json_object_get(m, "jsonrpc");
    id = json_object_get(m, "id");
    method = json_object_get(m, "method");
    FUZZ_CHECK(json_is_string(v) && strcmp(json_string_value(v), "2.0") == 0, "jsonrpc");
    if (method != NULL) {
        FUZZ_CHECK(json_is_string(method) && json_is_integer(id), "a request without id");
        FUZZ_CHECK(json_integer_value(id) > h->last_request_id, "request id %lld not increasing",
                   (long long)json_integer_value(id));
        FUZZ_CHECK(json_object_get(m, "result") == NULL && json_object_get(m, "error") == NULL,
                   "a request with result or error");
        h->last_request_id = json_integer_value(id);
    } else {
        FUZZ_CHECK(h->cur != NULL, "a response outside receive");
        FUZZ_CHECK(id != NULL && (json_object_get(m, "result") == NULL) !=
                                     (json_object_get(m, "error") == NULL),
                   "a response without id or with not exactly one of result and error");
        if (!h->send_fails)
            FUZZ_CHECK(json_array_append(h->answers, m) == 0, "out of memory");
    }
    json_decref(m);
    return h->send_fails ? SEND_FAILURE : 0;
}

static void make_call(struct harness *h)
{
    struct call *c;
    int64_t id = 0;
    int r;

    if (h->ncalls >= MAX_CALLS || h->freed)
        return;
    c = &h->calls[h->ncalls];
    /* ids are handed out in order: call k has id k + 1 if everything before was sent */
    c->id = (int64_t)h->ncalls + 1;
    c->h = h;
    r = jsonrpc_peer_call(h->p, "tools/call", NULL, result_cb, c, &id);
    if (r == 0) {
        FUZZ_CHECK(id == c->id, "id %lld, expected %lld", (long long)id, (long long)c->id);
        c->issued = true;
    } else {
        FUZZ_CHECK(id == 0, "an id for a failed call");
        FUZZ_CHECK(r == (h->closed ? ERR_CLOSED : SEND_FAILURE), "call failed with %d", r);
    }
    /* a failed send still uses up its id */
    h->ncalls++;
}

static void check_pending(const struct harness *h)
{
    size_t want = 0;

    for (size_t i = 0; i < h->ncalls; i++)
        want += h->calls[i].issued && !h->calls[i].forgotten && h->calls[i].cbs == 0;
    FUZZ_CHECK(jsonrpc_peer_pending(h->p) == want, "pending %zu, expected %zu",
               jsonrpc_peer_pending(h->p), want);
    if (h->closed)
        FUZZ_CHECK(want == 0, "%zu calls left after fail_all", want);
}

/* The responses sent for the server requests of the message, one each, in order. */
static void check_answers(const struct harness *h, size_t *nrequests, size_t *nnotes)
{
    size_t n = json_is_array(h->cur) ? json_array_size(h->cur) : 1, k = 0;

    *nrequests = 0;
    *nnotes = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(h->cur) ? json_array_get(h->cur, i) : h->cur;
        const json_t *m = json_object_get(e, "method"), *a, *err;

        if (m == NULL)
            continue;
        if (json_object_get(e, "id") == NULL) {
            (*nnotes)++;
            continue;
        }
        (*nrequests)++;
        if (k == json_array_size(h->answers))
            continue; /* checked by the caller's count */
        a = json_array_get(h->answers, k++);
        FUZZ_CHECK(json_equal(json_object_get(a, "id"), json_object_get(e, "id")),
                   "an answer's id is not its request's");
        err = json_object_get(a, "error");
        if (strcmp(json_string_value(m), "ping") == 0 && json_string_length(m) == 4) {
            FUZZ_CHECK(json_is_object(json_object_get(a, "result")) &&
                           json_object_size(json_object_get(a, "result")) == 0,
                       "ping not answered with {}");
        } else {
            FUZZ_CHECK(json_integer_value(json_object_get(err, "code")) == -32601 &&
                           strcmp(json_string_value(json_object_get(err, "message")),
                                  "Method not found") == 0,
                       "%s not answered with -32601", json_string_value(m));
        }
    }
}

static void do_receive(struct harness *h, const uint8_t *s, size_t n)
{
    json_error_t je;
    json_t *mine = json_loadb((const char *)s, n, JSON_DECODE_ANY, &je);
    char reason[128];
    size_t before = h->notes, nreq, nnotes;
    bool was_closed = h->closed;
    int r;

    h->cur = mine;
    h->answers = json_array();
    FUZZ_CHECK(h->answers != NULL, "out of memory");
    r = jsonrpc_peer_receive(h->p, (const char *)s, n, reason, sizeof(reason));
    FUZZ_CHECK(memchr(reason, '\0', sizeof(reason)) != NULL, "reason not terminated");
    if (was_closed) {
        FUZZ_CHECK(r == ERR_CLOSED, "a failed peer took a message: %d", r);
    } else if (r == ERR_TOO_LARGE || r == ERR_INVALID) {
        FUZZ_CHECK(r == ERR_TOO_LARGE ? n > MAX_MSG
                                      : n <= MAX_MSG && (mine == NULL || !valid_message(mine)),
                   "refused (%d: %s) a message this file reads as well-formed", r, reason);
        FUZZ_CHECK(json_array_size(h->answers) == 0 && h->notes == before,
                   "a refused message had effects");
    } else {
        FUZZ_CHECK(n <= MAX_MSG && mine != NULL && valid_message(mine),
                   "took (%d) a message this file reads as malformed", r);
        /* a peer failed or freed from a callback drops the rest: the answers sent are
         * still the first ones, in order */
        check_answers(h, &nreq, &nnotes);
        if (r == 0) {
            FUZZ_CHECK(json_array_size(h->answers) == nreq, "%zu answers for %zu requests",
                       json_array_size(h->answers), nreq);
            FUZZ_CHECK(h->notes - before == nnotes, "%zu notifications passed on, %zu came",
                       h->notes - before, nnotes);
        } else if (r == ERR_CLOSED) {
            FUZZ_CHECK(h->closed || h->freed, "ERR_CLOSED from a live peer");
        } else {
            FUZZ_CHECK(r == SEND_FAILURE && h->send_fails, "receive returned %d", r);
        }
    }
    json_decref(h->answers);
    h->answers = NULL;
    h->cur = NULL;
    json_decref(mine);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct harness *h;
    size_t at = 1;

    if (size < 1)
        return 0;
    h = fuzz_malloc(sizeof(*h));
    memset(h, 0, sizeof(*h));
    h->flags = data[0];
    h->p = jsonrpc_peer_new(send_fn, h, MAX_MSG);
    FUZZ_CHECK(h->p != NULL, "jsonrpc_peer_new");
    jsonrpc_peer_on_notification(h->p, notify_cb, h);
    for (int i = 0; i < 3; i++)
        make_call(h);
    while (at < size && !h->freed) {
        const uint8_t *seg = data + at, *end = memchr(seg, '\0', size - at);
        size_t n = end != NULL ? (size_t)(end - seg) : size - at;

        at += n + 1;
        if (n >= 1 && seg[0] == 0x01) {
            int64_t id = n >= 2 ? seg[1] % 8 + 1 : 1;

            jsonrpc_peer_forget(h->p, id);
            if ((size_t)id <= h->ncalls && h->calls[id - 1].cbs == 0)
                h->calls[id - 1].forgotten = true;
        } else if (n >= 1 && seg[0] == 0x02) {
            h->closed = true;
            jsonrpc_peer_fail_all(h->p, "failed");
        } else if (n >= 1 && seg[0] == 0x03) {
            make_call(h);
        } else if (n >= 1 && seg[0] == 0x04) {
            h->send_fails = !h->send_fails;
        } else {
            uint8_t *copy = fuzz_dup(seg, n);

            do_receive(h, copy, n);
            free(copy);
        }
        if (!h->freed)
            check_pending(h);
    }
    for (size_t i = 0; i < h->ncalls; i++)
        FUZZ_CHECK(h->calls[i].cbs <= 1, "a callback ran twice");
    if (!h->freed) {
        h->closed = true;
        jsonrpc_peer_fail_all(h->p, "end");
    }
    if (!h->freed) {
        for (size_t i = 0; i < h->ncalls; i++) {
            const struct call *c = &h->calls[i];

            FUZZ_CHECK(c->cbs == (c->issued && !c->forgotten ? 1 : 0),
                       "call %lld: %d callbacks after fail_all", (long long)c->id, c->cbs);
        }
        check_pending(h);
        jsonrpc_peer_free(h->p);
    }
    free(h);
    return 0;
}
