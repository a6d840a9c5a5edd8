/* One aligned block of scratch memory, carved into slots when a network is
 * planned for a frame size and reused for every frame of that size. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  float *base;
  gsize capacity;               /* floats */
} CgArena;

/* Make room for `n_floats`, keeping the block if it is big enough. FALSE
 * if the memory cannot be had (the old block is then freed). */
gboolean cg_arena_reserve (CgArena * arena, gsize n_floats);
void cg_arena_clear (CgArena * arena);

/* Round a slot's size up so each slot starts on a 64-byte boundary. */
static inline gsize
cg_arena_round (gsize n_floats)
{
  return (n_floats + 15) & ~(gsize) 15;
}

G_END_DECLS
