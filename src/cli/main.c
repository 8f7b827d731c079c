/*
 * main.c - credbroker's entry point: hardening first, then the subcommand.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "harden.h"
#include "isolate.h"
#include "log.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: credbroker exec [options] -- COMMAND [ARG...]\n"
               "       credbroker runner [--config FILE] [options]\n"
               "       credbroker version [--json]\n"
               "Run 'credbroker exec --help' for the options.\n");
}

int cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                   unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_duration_ms(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v, mult = 1000;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else
        return -1;
    if (v > 365ull * 24 * 3600 * 1000 / mult)
        return -1;
    *out = v * mult;
    return 0;
}

int main(int argc, char **argv)
{
    int r;

    /* The isolation trampoline (isolate.h) holds no secret and must stay dumpable long
     * enough to map its own ids: it is handled before the hardening. */
    if (argc > 1 && strcmp(argv[1], ISOLATE_TRAMPOLINE_ARG) == 0)
        return isolate_trampoline_main(argc, argv);

    /* Before anything reads a key: not dumpable, no core, stdio sane, SIGPIPE ignored. */
    if ((r = harden_process()) != 0) {
        fprintf(stderr, "credbroker: cannot harden the process: %s\n", strerror(-r));
        return CLI_EXIT_FAILURE;
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "exec") == 0)
        return cmd_exec(argc - 1, argv + 1);
    if (strcmp(argv[1], "runner") == 0)
        return cmd_runner(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "credbroker: unknown command '%.100s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
