#!/usr/bin/env python3
"""Writes the fuzzer's seed corpus: small valid safetensors files and a few
broken ones, each a starting point the fuzzer mutates.

Usage: make-corpus.py [DIR]   (default: corpus/ beside this script)
"""

import json
import os
import struct
import sys


def st_file(header, data=b"", pad=True, raw_len=None):
    text = header if isinstance(header, bytes) else json.dumps(
        header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    n = len(text) if raw_len is None else raw_len
    return struct.pack("<Q", n) + text + data


def tensors(entries, metadata=None):
    """entries: (name, dtype, shape, element bytes) -> header, data."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, elem in entries:
        size = {"F32": 4, "F16": 2, "BF16": 2}.get(dtype, 1)
        count = 1
        for d in shape:
            count *= d
        blob = (elem * count)[: count * size]
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    return header, data


def generator(prefix, ngf=1, n_blocks=1):
    """The ResnetGenerator key layout (ngf 1, F16), tiny."""
    e = []
    def conv(i, o, c, k):
        e.append((f"{prefix}model.{i}.weight", "F16", [o, c, k, k], b"\x00\x3c"))
        e.append((f"{prefix}model.{i}.bias", "F16", [o], b"\x00\xbc"))
    conv(1, ngf, 3, 7)
    conv(4, 2 * ngf, ngf, 3)
    conv(7, 4 * ngf, 2 * ngf, 3)
    for b in range(n_blocks):
        for j in (1, 5):
            e.append((f"{prefix}model.{10 + b}.conv_block.{j}.weight", "F16",
                      [4 * ngf, 4 * ngf, 3, 3], b"\x01\x00"))
            e.append((f"{prefix}model.{10 + b}.conv_block.{j}.bias", "F16",
                      [4 * ngf], b"\xff\x7b"))
    conv(10 + n_blocks, 2 * ngf, 4 * ngf, 3)  # ConvTranspose: [in, out, k, k]
    conv(13 + n_blocks, ngf, 2 * ngf, 3)
    conv(17 + n_blocks, 3, ngf, 7)
    return e


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    seeds = {}

    seeds["valid-empty"] = st_file({})
    h, d = tensors([("a", "F32", [2, 2], struct.pack("<f", 1.5)),
                    ("b", "F16", [3], b"\x01\x7c"),
                    ("c", "BF16", [1, 2], b"\x80\x3f")],
                   metadata={"format": "pt", "ngf": "1"})
    seeds["valid-dtypes"] = st_file(h, d)
    h, d = tensors([("empty", "F32", [0, 3], b""),
                    ("scalar", "F32", [], struct.pack("<f", -0.0)),
                    ("q\"\\\n\u00e9", "F16", [1], b"\x00\x7e")])
    seeds["valid-edge"] = st_file(h, d)
    h, d = tensors(generator(""))
    seeds["valid-generator"] = st_file(h, d)
    h, d = tensors(generator("G_A.") + generator("G_B."))
    seeds["valid-two-generators"] = st_file(h, d)
    seeds["valid-unpadded-unordered"] = st_file(
        b'{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},'
        b'"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}',
        b"\x00\x3c\x00\x80\x00\x00\x80\x7f", pad=False)

    seeds["bad-overlap"] = st_file(
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', b"\0" * 12)
    seeds["bad-size"] = st_file(
        b'{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', b"\0" * 8)
    seeds["bad-dtype"] = st_file(
        b'{"a":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}', b"\0" * 4)
    seeds["bad-header-length"] = st_file(b"{}", raw_len=1 << 40)
    seeds["bad-deep"] = st_file(b'{"a":' + b"[" * 40 + b"]" * 40 + b"}")
    seeds["bad-json"] = st_file(b"{'a':/*x*/0x1,}")
    seeds["bad-metadata"] = st_file(b'{"__metadata__":{"k":1,"k":"v"}}')
    seeds["bad-short"] = b"\x08\0\0\0\0"

    for name, blob in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
