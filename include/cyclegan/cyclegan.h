/* libcyclegan: CycleGAN ResNet generators on the CPU.
 *
 * Load a model file (safetensors) with cg_model_load(), make a CgGenerator for
 * one direction, and run it on frames of packed 8-bit pixels or planar floats.
 */
#pragma once

#include <cyclegan/cg-error.h>
#include <cyclegan/cg-pixels.h>
#include <cyclegan/cg-model.h>
#include <cyclegan/cg-generator.h>
