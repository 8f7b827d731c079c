/*
 * isolate.h - isolation of a command from the broker's secrets (DESIGN.md 4b).
 *
 * The command runs in its own user namespace (identity-mapped; the full uid/gid
 * range when the broker is root, so a root command keeps its file access) and
 * its own mount namespace, in which every secret of the broker (key files, the
 * runner's config and log, configured secret_paths, the audit file) is covered: a
 * file by a read-only, nodev bind of /dev/null (opening it fails; a memfd cannot be
 * bind-mounted), a directory by an empty read-only tmpfs. A cover is attached to the
 * object opened at start, not to whatever its path names now (isolate_secrets below). A command in a child user namespace holds no
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

/* Covers in one plan, and so secret paths: a bound, not a cut (adding one more fails). */
#define ISOLATE_MAX_COVERS 4096

enum isolate_mode { ISOLATE_AUTO, ISOLATE_REQUIRED, ISOLATE_OFF };

/* Parses "auto" | "required" | "off". Returns 0 or -1. */
int isolate_parse_mode(const char *s, enum isolate_mode *out);

/* Whether this host lets us create the namespaces and covers (probed once, by forking a
 * child that tries; cached). */
bool isolate_available(void);

/*
 * The broker's secret paths, opened once when it starts (credbroker exec, the runner).
 *
 * A cover is a mount, and a mount sits on an object (a dentry), not on a path: a
 * command may rename a parent directory of a secret on the shared filesystem, and a
 * path resolved afresh at the next spawn would then find nothing to hide while the
 * secret sits readable under its new name. So each secret is opened (O_PATH) at start
 * and known by its device and inode from then on; the descriptor is held so the inode
 * (and its number) cannot be freed and reused by another file. At each spawn
 * (isolate_plan_init) the path must still name that same object, or the command is
 * refused: ERR_SECRET_MOVED, "secret path changed: PATH". A path with nothing there at
 * start is refused at start (-ENOENT): what was hidden there may have been moved by a
 * command while we were not running, and cannot be found again.
 *
 * A file the broker itself writes and may reopen (its log, its audit file) is added
 * with `follows`: it is covered wherever it now is (the descriptor's current name),
 * and whatever is at its configured path is covered too, so rotation fails no task.
 */
struct isolate_secret {
    char *path;     /* as resolved at start (realpath, so no symlink in it), or as given
                     * when nothing was there; owned */
    int fd;         /* O_PATH to the object, held; -1 when nothing was there at start
                     * (only for a file we write) */
    dev_t dev;
    ino_t ino;
    bool is_dir;
    bool follows;   /* a file we write: covered where it now is, may move */
};

struct isolate_secrets {
    struct isolate_secret *v;
    int n;
};

/* Opens path (relative paths against the working directory) and adds it. Returns 0 or a
 * negative code: -ENOENT when nothing is there (unless follows), ERR_TOO_LARGE past
 * ISOLATE_MAX_COVERS / 2. */
int isolate_secrets_add(struct isolate_secrets *s, const char *path, bool follows);
/* A followed file was reopened by its writer (the log after SIGHUP): hold the object now at
 * its configured path instead. Returns 0 or a negative code (the old object stays held). */
int isolate_secrets_refresh(struct isolate_secrets *s, const char *path);
void isolate_secrets_free(struct isolate_secrets *s);

/* One mount the child makes: the object at path, identified by dev and ino, which the
 * child checks again after it opened the path in its own namespace. */
struct isolate_cover {
    char *path;     /* owned */
    dev_t dev;
    ino_t ino;
    bool is_dir;
};

/* Everything the child half needs, prepared in the parent before the fork. */
struct isolate_plan {
    bool enabled;
    struct isolate_cover *covers;              /* deepest first (owned) */
    int ncovers;
    bool self_map;                             /* not root: the child maps its own ids */
    char uid_map[32], gid_map[32];             /* "<id> <id> 1\n" for self_map */
    int sync_to_parent[2];                     /* child: "namespaces made" */
    int sync_to_child[2];                      /* parent: "maps written" */
};

/*
 * Prepares a plan covering every secret of s, after checking that each still names the
 * object opened at start. Returns 0, ERR_SECRET_MOVED with *moved set to that secret's
 * path (s owns it), or another negative code; free with isolate_plan_free() either way.
 */
int isolate_plan_init(struct isolate_plan *p, const struct isolate_secrets *s,
                      const char **moved);
/* Whether the directory dir (NULL: our working directory) is at or under a covered
 * directory of the plan: the command would hold the real directory behind the cover.
 * Returns 0, ERR_UNDER_SECRET with *covered set to that cover's path (p owns it), or
 * -errno when dir cannot be walked. */
int isolate_plan_check_workdir(const struct isolate_plan *p, const char *dir,
                               const char **covered);
void isolate_plan_free(struct isolate_plan *p);

/* In the child, right after fork: enters the namespaces, waits for the parent to
 * write the id maps, covers the objects (ERR_SECRET_MOVED when a path no longer names its
 * object), enters the working directory again by its path, so that it resolves through
 * the covers, and drops CAP_SYS_ADMIN from the bounding set. Returns 0 or a negative code. */
int isolate_child_enter(const struct isolate_plan *p);

/*
 * Not root: a non-dumpable process cannot write its own /proc/self/uid_map, and
 * making the forked child dumpable would expose a copy of the broker's memory to
 * ptrace. So the child execs a fresh trampoline (credbroker itself, argv[1] ==
 * ISOLATE_TRAMPOLINE_ARG, nothing secret in its memory), which enters the
 * namespaces, covers the paths and execs the command.
 *
 * isolate_trampoline_argv builds that argv in the parent (before the fork):
 *   credbroker __isolate FILE NCOVERS COVER... -- ARGV...
 * where each COVER is "f:DEV:INO:PATH" or "d:DEV:INO:PATH" (no secret in it).
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
