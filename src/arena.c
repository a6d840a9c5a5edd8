#include "arena.h"

#include <stdlib.h>

gboolean
cg_arena_reserve (CgArena * arena, gsize n_floats)
{
  void *mem = NULL;

  if (arena->base && arena->capacity >= n_floats)
    return TRUE;
  cg_arena_clear (arena);
  if (n_floats > G_MAXSIZE / sizeof (float)
      || posix_memalign (&mem, 64, n_floats * sizeof (float)) != 0)
    return FALSE;
  arena->base = mem;
  arena->capacity = n_floats;
  return TRUE;
}

void
cg_arena_clear (CgArena * arena)
{
  free (arena->base);
  arena->base = NULL;
  arena->capacity = 0;
}
