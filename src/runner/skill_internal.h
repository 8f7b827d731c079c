/*
 * skill_internal.h - what skill_extract.c and skill.c share. Nothing else includes it.
 */
#ifndef CREDBROKER_SKILL_INTERNAL_H
#define CREDBROKER_SKILL_INTERNAL_H

#include <stddef.h>

/* Go's syscall.Errno text for the errno err: glibc's message, first letter lowercased. */
void skill__go_errno(int err, char *buf, size_t len);

#endif
