# Elementwise kernels of libcyclegan. orcc turns this into cg-orc.c/.h at
# build time; `orcc --test` checks each against its C emulation.
# Reductions (means, variances) stay in C: ORC has no float accumulators.

# d = s * scale + offset
.function cg_orc_scale_offset
.dest 4 d float
.source 4 s float
.floatparam 4 scale
.floatparam 4 offset
.temp 4 t
mulf t, s, scale
addf d, t, offset

# d = max (s * scale + offset, 0): InstanceNorm then ReLU
.function cg_orc_scale_offset_relu
.dest 4 d float
.source 4 s float
.floatparam 4 scale
.floatparam 4 offset
.const 4 zero 0.0
.temp 4 t
mulf t, s, scale
addf t, t, offset
maxf d, t, zero

# d = s * scale + offset + r: InstanceNorm then the residual connection
.function cg_orc_scale_offset_add
.dest 4 d float
.source 4 s float
.source 4 r float
.floatparam 4 scale
.floatparam 4 offset
.temp 4 t
mulf t, s, scale
addf t, t, offset
addf d, t, r

# d = max (s, 0)
.function cg_orc_relu
.dest 4 d float
.source 4 s float
.const 4 zero 0.0
maxf d, s, zero

# Four-byte pixels -> one float per byte: d_i = byte_i * scale + offset
# (byte 0 is the first in memory). The caller points the X/alpha plane at
# scratch.
.function cg_orc_unpack_4b
.dest 4 d0 float
.dest 4 d1 float
.dest 4 d2 float
.dest 4 d3 float
.source 4 s guint32
.floatparam 4 scale
.floatparam 4 offset
.temp 2 lo
.temp 2 hi
.temp 1 b0
.temp 1 b1
.temp 1 b2
.temp 1 b3
.temp 2 w
.temp 4 l
.temp 4 f
splitlw hi, lo, s
splitwb b1, b0, lo
splitwb b3, b2, hi
convubw w, b0
convuwl l, w
convlf f, l
mulf f, f, scale
addf d0, f, offset
convubw w, b1
convuwl l, w
convlf f, l
mulf f, f, scale
addf d1, f, offset
convubw w, b2
convuwl l, w
convlf f, l
mulf f, f, scale
addf d2, f, offset
convubw w, b3
convuwl l, w
convlf f, l
mulf f, f, scale
addf d3, f, offset

# Floats -> bytes: d = sat (trunc (s * scale + offset)). With offset =
# scale + 0.5 the truncation rounds half up; saturation clamps anything
# out of range to 0..255.
.function cg_orc_quantize_u8
.dest 1 d guint8
.source 4 s float
.floatparam 4 scale
.floatparam 4 offset
.temp 4 f
.temp 4 l
.temp 2 w
mulf f, s, scale
addf f, f, offset
convfl l, f
convssslw w, l
convsuswb d, w

# Four byte planes -> four-byte pixels, b0 first in memory.
.function cg_orc_merge_4b
.dest 4 d guint32
.source 1 b0 guint8
.source 1 b1 guint8
.source 1 b2 guint8
.source 1 b3 guint8
.temp 2 lo
.temp 2 hi
mergebw lo, b0, b1
mergebw hi, b2, b3
mergewl d, lo, hi

# d = (s & replace) | (a & keep): the X/alpha bytes of `a` pass through.
.function cg_orc_keep_bytes
.dest 4 d guint32
.source 4 s guint32
.source 4 a guint32
.param 4 keep
.param 4 replace
.temp 4 t
.temp 4 k
andl t, s, replace
andl k, a, keep
orl d, t, k

# ---- Training: the elementwise backward passes and the optimizer ----

# d = max (s, slope * s): LeakyReLU for 0 <= slope < 1
.function cg_orc_leaky_relu
.dest 4 d float
.source 4 s float
.floatparam 4 slope
.temp 4 t
mulf t, s, slope
maxf d, s, t

# d = g * (o > 0 ? 1 : slope): ReLU (slope 0) and LeakyReLU backward from
# the forward's output. The comparison mask picks 1.0 by its bits, so
# factor = slope + (1 - slope) * [o > 0] needs no select.
.function cg_orc_leaky_relu_backward
.dest 4 d float
.source 4 g float
.source 4 o float
.floatparam 4 slope
.floatparam 4 one_minus_slope
.const 4 zero 0.0
.const 4 one 1.0
.temp 4 m
.temp 4 f
cmpltf m, zero, o
andl f, m, one
mulf f, f, one_minus_slope
addf f, f, slope
mulf d, g, f

# d = g * (1 - y * y): tanh backward from its output
.function cg_orc_tanh_backward
.dest 4 d float
.source 4 g float
.source 4 y float
.const 4 one 1.0
.temp 4 t
mulf t, y, y
subf t, one, t
mulf d, g, t

# d = a + s (accumulating a gradient; d may equal a)
.function cg_orc_add
.dest 4 d float
.source 4 a float
.source 4 s float
addf d, a, s

# d = a + g * ga + x * xa + c: InstanceNorm backward accumulated,
# dx += rstd (g - mean g - xhat mean (g xhat)) with xhat = x rstd + off
# folded into the three coefficients.
.function cg_orc_in_backward
.dest 4 d float
.source 4 a float
.source 4 g float
.source 4 x float
.floatparam 4 ga
.floatparam 4 xa
.floatparam 4 c
.temp 4 t
.temp 4 u
mulf t, g, ga
mulf u, x, xa
addf t, t, u
addf t, t, c
addf d, a, t

# d = g * ga + x * xa + c: the same, written where d holds no gradient yet
.function cg_orc_in_backward_set
.dest 4 d float
.source 4 g float
.source 4 x float
.floatparam 4 ga
.floatparam 4 xa
.floatparam 4 c
.temp 4 t
.temp 4 u
mulf t, g, ga
mulf u, x, xa
addf t, t, u
addf d, t, c

# One Adam step (PyTorch's, no weight decay, no amsgrad), in place through
# aliased sources: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
# p -= step * m / (sqrt (v) / sqrt (bc2) + eps), step = lr / bc1.
.function cg_orc_adam
.dest 4 p float
.dest 4 m float
.dest 4 v float
.source 4 p0 float
.source 4 m0 float
.source 4 v0 float
.source 4 g float
.floatparam 4 b1
.floatparam 4 omb1
.floatparam 4 b2
.floatparam 4 omb2
.floatparam 4 bc2_sqrt
.floatparam 4 eps
.floatparam 4 neg_step
.temp 4 mm
.temp 4 vv
.temp 4 t
mulf mm, m0, b1
mulf t, g, omb1
addf mm, mm, t
mulf vv, v0, b2
mulf t, g, g
mulf t, t, omb2
addf vv, vv, t
sqrtf t, vv
divf t, t, bc2_sqrt
addf t, t, eps
divf t, mm, t
mulf t, t, neg_step
addf p, p0, t
copyl m, mm
copyl v, vv
