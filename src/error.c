/* libcyclegan: the CG_ERROR domain.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <cyclegan/cg-error.h>

G_DEFINE_QUARK (cg-error-quark, cg_error);
