#pragma once

#include <glib.h>

G_BEGIN_DECLS

#ifndef CG_API
#define CG_API __attribute__ ((visibility ("default")))
#endif

/**
 * CG_ERROR:
 *
 * The error domain of libcyclegan. Messages name the file, the item and the
 * problem, e.g. `m.safetensors: tensor "G_A.model.1.weight": shape [64,3,7,7]
 * needs 37632 bytes, data_offsets span 37628`.
 */
#define CG_ERROR (cg_error_quark ())

typedef enum
{
  CG_ERROR_IO,                  /* the file cannot be opened, read or written */
  CG_ERROR_FORMAT,              /* not a well-formed safetensors file */
  CG_ERROR_ARCHITECTURE,        /* well-formed, but not a CycleGAN ResNet generator */
  CG_ERROR_DIRECTION,           /* the model has no generator for that direction */
  CG_ERROR_SIZE,                /* a frame size the network cannot run */
  CG_ERROR_NO_MEMORY,           /* the scratch memory for a frame size cannot be had */
} CgError;

CG_API GQuark cg_error_quark (void);

G_END_DECLS
