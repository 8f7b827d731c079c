/*
 * isolate.h - isolation of a command from the broker's secrets (DESIGN.md 4b).
 *
 * The command runs in its own user namespace (identity-mapped; the full uid/gid
 * range when the broker is root, so a root command keeps its file access) and
 * its own mount namespace, in which every secret path of the broker (key files,
 * the runner's config, configured secret_paths) is covered: a file by /dev/null
 * bind-mounted read-only (it reads as empty; a memfd cannot be bind-mounted), a
 * directory by an empty read-only tmpfs. A command in a child user namespace holds no
 * capability over the broker, so even root inside cannot ptrace it or read its
 * memory. CAP_SYS_ADMIN is dropped from the command's bounding set, so it cannot
 * unmount the covers; in any namespace it creates itself the covers are locked
 * (the kernel's MNT_LOCKED for mounts inherited from a more privileged
 * namespace).
 *
 * Split in two halves around fork(): isolate_parent_* run in the broker,
 * isolate_child_enter() in the forked child before exec (async-signal-safe
 * calls only: the broker may have other threads).
 */
#ifndef CREDBROKER_ISOLATE_H
#define CREDBROKER_ISOLATE_H

#include <stdbool.h>
#include <sys/types.h>

#define ISOLATE_MAX_PATHS 64

enum isolate_mode { ISOLATE_AUTO, ISOLATE_REQUIRED, ISOLATE_OFF };

/* Parses "auto" | "required" | "off". Returns 0 or -1. */
int isolate_parse_mode(const char *s, enum isolate_mode *out);

/* Whether this host lets us create the namespaces (probed once, by forking a
 * child that tries; cached). */
bool isolate_available(void);

/* Everything the child half needs, prepared in the parent before the fork. */
struct isolate_plan {
    bool enabled;
    char *paths[ISOLATE_MAX_PATHS];            /* absolute, resolved paths to cover (owned) */
    bool is_dir[ISOLATE_MAX_PATHS];
    int npaths;
    bool self_map;                             /* not root: the child maps its own ids */
    char uid_map[32], gid_map[32];             /* "<id> <id> 1\n" for self_map */
    int sync_to_parent[2];                     /* child: "namespaces made" */
    int sync_to_child[2];                      /* parent: "maps written" */
};

/*
 * Prepares a plan covering paths[0..n) (missing paths are skipped; each path is
 * resolved with realpath so a symlink's target is what gets covered). Returns 0
 * or a negative code; free with isolate_plan_free() either way.
 */
int isolate_plan_init(struct isolate_plan *p, const char *const *paths, int n);
void isolate_plan_free(struct isolate_plan *p);

/* In the child, right after fork: enters the namespaces, waits for the parent to
 * write the id maps, covers the paths, drops CAP_SYS_ADMIN from the bounding set.
 * Returns 0 or -errno. */
int isolate_child_enter(const struct isolate_plan *p);

/*
 * Not root: a non-dumpable process cannot write its own /proc/self/uid_map, and
 * making the forked child dumpable would expose a copy of the broker's memory to
 * ptrace. So the child execs a fresh trampoline (credbroker itself, argv[1] ==
 * ISOLATE_TRAMPOLINE_ARG, nothing secret in its memory), which enters the
 * namespaces, covers the paths and execs the command.
 *
 * isolate_trampoline_argv builds that argv in the parent (before the fork):
 *   credbroker __isolate FILE NPATHS PATH... -- ARGV...
 * Caller frees the array (not the strings) with free(). NULL on allocation failure.
 */
#define ISOLATE_TRAMPOLINE_ARG "__isolate"
char **isolate_trampoline_argv(const struct isolate_plan *p, const char *file, char *const *argv);
/* The trampoline's main: never returns on success (execs the command); returns an exit
 * status on failure: ISOLATE_EXIT_FAILED when the command could not be isolated (it never
 * runs without), 127 or 126 when its exec failed (as credbroker exec answers both). */
#define ISOLATE_EXIT_FAILED 125
int isolate_trampoline_main(int argc, char **argv);

/*
 * In the parent, right after fork: closes the child's ends of the plan's pipes.
 * A root broker maps the child's ids once the child says its namespaces exist,
 * so *from_child and *to_child take over the parent's ends for that (the plan
 * keeps neither; both -1 when the child maps its own ids). The caller waits
 * for from_child to be readable, calls isolate_parent_map, and closes both.
 */
void isolate_parent_after_fork(struct isolate_plan *p, int *from_child, int *to_child);
/* Reads the child's "namespaces made" from from_child (once it is readable; a blocking fd is
 * waited on), writes its uid/gid maps and lets it go on. Returns 0 or a negative code (the child then fails its
 * exec); -ECHILD when the child ended before its namespaces existed. */
int isolate_parent_map(int from_child, int to_child, pid_t child);

#endif
