// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tracepoint_double: tracepoint_counter built to count each openat(2) twice (same section,
 * function, map and global). Tests push it under a tag that held the first build, so a moved
 * tag shows up as a new program that counts differently.
 */
#define COUNT_STEP 2
#include "../tracepoint_counter.c"
