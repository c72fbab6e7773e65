#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures of test/torchPickle.test.ts into test/fixtures/torch/.

The tests run where PyTorch is not installed, so the files are committed; rerun this only to change them:

    python3 scripts/make-torch-fixtures.py        # needs torch (written with torch 1.13; any version >= 1.6 works)

(On a box where `import torch` fails with "libblas.so.3: cannot open shared object file", prefix
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread.) Seeded and free of timestamps, so a rerun with the
same torch version rewrites the same bytes. expected.json holds every tensor's dtype, shape and values exactly as
torch reads them back (float tensors widened to float32, int64 as decimal strings), so the test compares exactly.
Hostile files are written as raw bytes or with stand-in classes: nothing in them is ever run here either.
"""

import collections
import json
import os
import re
import struct
import sys
import types
import zipfile
import zlib

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "torch")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)
expected = {}

DTYPE_TAGS = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.int64: "I64",
    torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def describe(t):
    flat = t.detach().reshape(-1)
    if t.dtype == torch.int64:
        values = [str(v) for v in flat.tolist()]
    elif t.dtype.is_floating_point:
        values = flat.float().tolist()  # what the reader returns: float32 (exact for f16/bf16, rounded for f64)
    else:
        values = [int(v) for v in flat.tolist()]
    return {"dtype": DTYPE_TAGS[t.dtype], "shape": list(t.shape), "values": values}


def save(name, obj, state_dict=None, **kw):
    path = os.path.join(OUT, name)
    torch.save(obj, path, **kw)
    if state_dict is not None:
        expected[name] = {k: describe(v) for k, v in state_dict.items()}
    return path


def records(path):
    """(name, bytes) of every record of a zip, in order."""
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def rezip(name, recs, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(os.path.join(OUT, name), "w", compression) as z:
        for n, data in recs:
            info = zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            z.writestr(info, data)


def write_zip64(name, recs):
    """A stored zip whose every size and offset lives in ZIP64 extra fields, as miniz writes files over 4 GiB."""
    out, central = bytearray(), bytearray()
    for n, data in recs:
        fn, crc, offset = n.encode(), zlib.crc32(data), len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(fn), 20)
        out += fn + struct.pack("<HHQQ", 1, 16, len(data), len(data)) + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(fn), 28, 0, 0, 0,
            0, 0xFFFFFFFF,
        )
        central += fn + struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
    cd_offset, eocd64 = len(out), len(out) + len(central)
    out += central
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(recs), len(recs), len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(out)


def rename_root(recs, root):
    return [(root + "/" + n.split("/", 1)[1], d) for n, d in recs]


# A plain state dict, then the same records re-packed: deflated under another root folder, in ZIP64 form, and
# with a byteorder record saying 'big'; then broken: no data.pkl, and one storage record missing.
plain = collections.OrderedDict(
    a=torch.randn(2, 3), b=torch.randn(4), scalar=torch.tensor(1.5), empty=torch.zeros(0, 3)
)
plain_recs = records(save("plain.pt", plain, plain))
other_root = rename_root(plain_recs, "other_root") + [("other_root/byteorder", b"little")]
rezip("deflated.pt", other_root, zipfile.ZIP_DEFLATED)
expected["deflated.pt"] = expected["plain.pt"]
write_zip64("zip64.pt", rename_root(plain_recs, "archive") + [("archive/byteorder", b"little")])
expected["zip64.pt"] = expected["plain.pt"]
rezip("big-endian.pt", plain_recs + [("plain/byteorder", b"big")])
rezip("no-data-pkl.pt", [(n, d) for n, d in plain_recs if not n.endswith("data.pkl")])
rezip("missing-storage.pt", [(n, d) for n, d in plain_recs if n != "plain/data/1"])


class Tiny(torch.nn.Module):
    """Embedding tied to the output layer (one storage under two names), plus integer and bool buffers."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(5, 3)
        self.proj = torch.nn.Linear(3, 3)
        self.out = torch.nn.Linear(3, 5, bias=False)
        self.out.weight = self.emb.weight
        self.register_buffer("positions", torch.tensor([0, 1, 2**62 + 1, -(2**63)], dtype=torch.int64))
        self.register_buffer("mask", torch.tensor([True, False, True]))


sd = Tiny().state_dict()  # an OrderedDict carrying _metadata (written with BUILD)
adam = {"exp_avg": torch.randn(5, 3), "exp_avg_sq": torch.rand(5, 3), "step": torch.tensor(10.0)}
lightning = {
    "epoch": 3,
    "global_step": 100,
    "pytorch-lightning_version": "2.1.0",
    "state_dict": sd,
    "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4, "completed": 3}}}},
    "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_path": "", "best_model_score": None}},
    "optimizer_states": [
        {"state": {0: adam}, "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "params": [0, 1]}]}
    ],
    "lr_schedulers": [{"last_epoch": 100, "_step_count": 101, "base_lrs": [1e-3], "verbose": False}],
    "notes": {"bytes": b"\x00\xffab", "huge": 2**70, "negative": -5, "float": 0.1, "tuple": (1, "x"), "none": None,
              "set": {2, 1}},
}
save("lightning.ckpt", lightning, sd)

dtypes = collections.OrderedDict(
    f16=torch.randn(3).half(),
    bf16=torch.randn(2, 2).bfloat16(),
    f64=torch.randn(3, dtype=torch.float64),
    i64=torch.tensor([-(2**63), 2**53 + 1, 7]),
    i32=torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32),
    i16=torch.tensor([-32768, 5], dtype=torch.int16),
    i8=torch.tensor([-128, 127], dtype=torch.int8),
    u8=torch.tensor([0, 255], dtype=torch.uint8),
    bool=torch.tensor([[True, False], [False, True]]),
)
save("dtypes.pt", dtypes, dtypes)

# Views of one storage: a row slice (storage offset), a column (stride 5, offset 1), a transpose, the same tensor
# under two names, an expand (stride 0), and a transposed f16 (strided and widened).
base = torch.arange(20, dtype=torch.float32).reshape(4, 5)
views = collections.OrderedDict(
    base=base, rows=base[1:3], column=base[:, 1], transposed=base.t(), tied_a=base, tied_b=base,
    expanded=torch.arange(3.0).expand(2, 3), half_t=torch.randn(2, 3).half().t(), corner=base.t()[1:, 2:],
)
save("views.pt", views, views)

params = {"w": torch.nn.Parameter(torch.randn(2, 2)), "frozen": torch.nn.Parameter(torch.randn(3), requires_grad=False)}
save("param.pt", params, params)

# Newer pickle protocols: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINBYTES, EMPTY_SET / ADDITEMS, BYTEARRAY8 (5).
for proto in (4, 5):
    w = {"w": torch.randn(2, 3)}
    save(f"protocol{proto}.pt", {"state_dict": w, "tags": {3, 1}, "raw": b"xy", "buf": bytearray(b"z")}, w,
         pickle_protocol=proto)



def stable_legacy_keys(path):
    """The legacy format names storages by their memory address; number them instead, keeping each string's length."""
    with open(path, "rb") as f:
        data = f.read()
    keys = []
    for m in re.finditer(rb"X(....)(\d{9,20})", data, re.S):
        if struct.unpack("<I", m.group(1))[0] == len(m.group(2)) and m.group(2) not in keys:
            keys.append(m.group(2))
    for i, k in enumerate(keys):
        data = data.replace(k, str(i + 1).zfill(len(k)).encode())
    with open(path, "wb") as f:
        f.write(data)


stable_legacy_keys(save("legacy.pt", {"w": torch.ones(2)}, _use_new_zipfile_serialization=False))

# A Lightning checkpoint whose hyper_parameters are an OmegaConf DictConfig, as MDLM's are: a stand-in class under
# that module name is enough to make torch.save write the same GLOBAL.
omegaconf, dictconfig = types.ModuleType("omegaconf"), types.ModuleType("omegaconf.dictconfig")


class DictConfig:
    def __init__(self, content):
        self._content = content


DictConfig.__module__, DictConfig.__qualname__ = "omegaconf.dictconfig", "DictConfig"
dictconfig.DictConfig = DictConfig
sys.modules.update({"omegaconf": omegaconf, "omegaconf.dictconfig": dictconfig})
save("omegaconf.ckpt", {"state_dict": sd, "epoch": 1, "hyper_parameters": DictConfig({"lr": 1e-3})})

# data.pkl = pickle of os.system('echo pwned'), written as bytes; and a bare tensor (no dict at the top).
evil = b"\x80\x02cos\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."
rezip("os-system.pt", [("archive/data.pkl", evil), ("archive/version", b"3\n")])
save("bare-tensor.pt", torch.ones(2))

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"wrote {len(os.listdir(OUT))} files to {os.path.normpath(OUT)}")
