# SPDX-License-Identifier: LGPL-2.1-or-later
"""Minimal safetensors in numpy (no `safetensors` package).

Layout: 8 bytes little-endian u64 N, N bytes of JSON (padded with spaces to
a multiple of 8) {"name": {"dtype": "F32"|"F16"|"BF16", "shape": [...],
"data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data,
tightly packed in the order written.

The writer lives in src/tools/cyclegan-convert, so the installed converter
is one self-contained file; this module loads it from the source tree and
adds the reader.
"""

import importlib.machinery
import importlib.util
import json
import os
import struct

import numpy as np

CONVERTER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "..", "..", "src", "tools", "cyclegan-convert")


def _load_converter():
    loader = importlib.machinery.SourceFileLoader("cyclegan_convert", CONVERTER)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


convert = _load_converter()

DTYPES = convert.DTYPES
DTYPE_SIZE = convert.DTYPE_SIZE
write = convert.write_safetensors      # write(path, tensors, metadata=None, dtype="F32")
round_to = convert.round_to            # round_to(array, dtype) -> float32


class File:
    """A read safetensors file: `tensors` name -> float32 array (in data
    order), `dtypes` name -> dtype string, `metadata` str -> str."""

    def __init__(self, tensors, dtypes, metadata):
        self.tensors = tensors
        self.dtypes = dtypes
        self.metadata = metadata

    def __getitem__(self, name):
        return self.tensors[name]

    def __contains__(self, name):
        return name in self.tensors


def read(path):
    """Read and check a safetensors file (tensors must tile the data)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: shorter than the 8-byte header length" % path)
    (n,) = struct.unpack_from("<Q", blob, 0)
    if 8 + n > len(blob):
        raise ValueError("%s: header length %d beyond the file" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    tensors, dtypes = {}, {}
    end = 0
    for name, e in entries:
        begin, stop = e["data_offsets"]
        dtype, shape = e["dtype"], tuple(e["shape"])
        if begin != end:
            raise ValueError("%s: tensor %r starts at %d, expected %d" % (path, name, begin, end))
        if stop - begin != DTYPE_SIZE[dtype] * int(np.prod(shape, dtype=np.int64)):
            raise ValueError("%s: tensor %r: size does not match shape" % (path, name))
        tensors[name] = convert.decode(data[begin:stop], dtype, shape)
        dtypes[name] = dtype
        end = stop
    if end != len(data):
        raise ValueError("%s: data is %d bytes, tensors cover %d" % (path, len(data), end))
    return File(tensors, dtypes, metadata)
