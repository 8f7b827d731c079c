/*
 * cli.h - credbroker's subcommands. Each returns the process exit status.
 */
#ifndef CREDBROKER_CLI_H
#define CREDBROKER_CLI_H

#define CLI_EXIT_USAGE 2      /* bad arguments or configuration */
#define CLI_EXIT_FAILURE 125  /* the broker could not be set up (as env(1) and timeout(1) use it) */
#define CLI_EXIT_NOEXEC 126
#define CLI_EXIT_NOTFOUND 127

int cmd_exec(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_runner(int argc, char **argv);

/* Parses a duration: "10" (seconds), "10s", "500ms", "2m". Returns 0 or -1. */
int cli_parse_duration_ms(const char *s, unsigned long long *out);
/* Parses an unsigned integer in [min, max]. Returns 0 or -1. */
int cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                   unsigned long long *out);

#endif
