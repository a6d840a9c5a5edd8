/* Random CycleGAN ResNet generators for the element tests. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Writes a model file with random weights in the official ResnetGenerator
 * key layout: both generators (keys prefixed G_A. and G_B.) or, with
 * `both` FALSE, one unprefixed generator (a2b only). The same seed gives
 * the same file. */
gboolean test_model_write (const char *path, int ngf, int n_blocks,
    gboolean both, guint32 seed, GError ** error);

G_END_DECLS
