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
