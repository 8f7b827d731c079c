/*
 * cmd_version.c - `credbroker version [--json]`: what this build can do here, so
 * a runner (and its platform) can tell which path it will take.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "credbroker_config.h"

#include "broker.h"
#include "cli.h"
#include "isolate.h"
#include "secret.h"

int cmd_version(int argc, char **argv)
{
    bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
    struct secret *probe = NULL;
    const char *arena, *isolation;
    json_t *o;
    char *s;

    if (argc > 2 || (argc == 2 && !json)) {
        fprintf(stderr, "usage: credbroker version [--json]\n");
        return CLI_EXIT_USAGE;
    }
    /* Allocate one byte to learn which backing the secret arena gets on this host. */
    arena = secret_new(1, &probe) == 0 ? secret_arena_backing_name() : "unavailable";
    secret_free(probe);
    isolation = broker_supported() && isolate_available() ? "namespaces" : "none";
    if (!json) {
        printf("credbroker %s\nbroker supported: %s\nsecret arena: %s\nisolation: %s\n"
               "routes: %s\n",
               CREDBROKER_VERSION, broker_supported() ? "yes" : "no", arena, isolation,
               broker_supported() ? "yes" : "no");
        return 0;
    }
    /* routes: several APIs per invocation, each at http://NAME.broker.local (--route). */
    o = json_pack("{s:s, s:b, s:s, s:s, s:b}", "version", CREDBROKER_VERSION, "broker_supported",
                  broker_supported(), "secret_arena", arena, "isolation", isolation, "routes",
                  broker_supported());
    if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL) {
        json_decref(o);
        return CLI_EXIT_FAILURE;
    }
    printf("%s\n", s);
    free(s);
    json_decref(o);
    return 0;
}
