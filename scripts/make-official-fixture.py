#!/usr/bin/python3
"""Writes test/fixtures/official-tiny/: a tiny model in the official MDLM layouts and an independent forward's logits.

Rerun (needs Debian's python3-torch; CI does not, it reads the committed files):
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread /usr/bin/python3 scripts/make-official-fixture.py

What it writes, from one seeded set of weights with non-trivial adaLN and sigma_map (so the exact fold is tested):
  hf/config.json + hf/model.safetensors      the Hugging Face layout of kuleshov-group/mdlm-owt (`backbone.` names)
  sdtt/config.json + sdtt/model.safetensors  a jdeschena/sdtt branch (OmegaConf config, `backbone.` names)
  conditioned/config.json                    the HF config with time_conditioning true (must be refused)
  lightning/model.ckpt + config.json         the same weights in a Lightning-style torch.save {"state_dict": ...}
  expected.safetensors                       input_ids [2, L] (I32) and the logits [2, L, V] (F32) of the forward
  official-keys.json                         the state-dict names and shapes of the module below (strict-load list)

The module is our own PyTorch transcription of the network described by the official DIT (models/dit.py of
kuleshov-group/mdlm): embedding, weight-only LayerNorm, adaLN from SiLU(sigma_map(sigma)), rotary q/k
(rotate_half), bias-free packed qkv, tanh-GELU MLP, final adaLN + untied linear. It runs in float64 at sigma = 0
(time_conditioning false) with plain softmax attention.
"""
import collections
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

V, D, HEADS, COND, BLOCKS, L = 258, 16, 2, 8, 2, 12
FREQ = 256
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "official-tiny")


class Norm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.layer_norm(x, [x.shape[-1]]) * self.weight


class SigmaMap(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FREQ, COND), nn.SiLU(), nn.Linear(COND, COND))

    def forward(self, sigma):
        half = FREQ // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=sigma.dtype) / half)
        args = sigma[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class Rotary(nn.Module):
    def __init__(self, head_dim):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)))

    def cos_sin(self, length, dtype):
        freqs = torch.outer(torch.arange(length, dtype=dtype), self.inv_freq.to(dtype))
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos(), emb.sin()


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = Norm(D)
        self.attn_qkv = nn.Linear(D, 3 * D, bias=False)
        self.attn_out = nn.Linear(D, D, bias=False)
        self.norm2 = Norm(D)
        self.mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.GELU(approximate="tanh"), nn.Linear(4 * D, D))
        self.adaLN_modulation = nn.Linear(COND, 6 * D)

    def forward(self, x, cos, sin, c):
        s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c)[:, None].chunk(6, dim=2)
        b, n, _ = x.shape
        qkv = self.attn_qkv(modulate(self.norm1(x), s1, sc1)).view(b, n, 3, HEADS, D // HEADS)
        q, k, v = qkv.unbind(2)
        q = q * cos[None, :, None] + rotate_half(q) * sin[None, :, None]
        k = k * cos[None, :, None] + rotate_half(k) * sin[None, :, None]
        att = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(D // HEADS)
        y = torch.einsum("bhqk,bkhd->bqhd", att.softmax(-1), v).reshape(b, n, D)
        x = x + g1 * self.attn_out(y)
        return x + g2 * self.mlp(modulate(self.norm2(x), s2, sc2))


class FinalLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm_final = Norm(D)
        self.linear = nn.Linear(D, V)
        self.adaLN_modulation = nn.Linear(COND, 2 * D)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c)[:, None].chunk(2, dim=2)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class EmbeddingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(V, D))


class DIT(nn.Module):
    def __init__(self):
        super().__init__()
        self.vocab_embed = EmbeddingLayer()
        self.sigma_map = SigmaMap()
        self.rotary_emb = Rotary(D // HEADS)
        self.blocks = nn.ModuleList([Block() for _ in range(BLOCKS)])
        self.output_layer = FinalLayer()

    def forward(self, ids, sigma):
        x = self.vocab_embed.embedding[ids]
        c = F.silu(self.sigma_map(sigma))
        cos, sin = self.rotary_emb.cos_sin(ids.shape[1], x.dtype)
        for blk in self.blocks:
            x = blk(x, cos, sin, c)
        return self.output_layer(x, c)


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.numpy().tobytes()
        dtype = {torch.float32: "F32", torch.int32: "I32"}[t.dtype]
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    torch.manual_seed(20261203)
    model = DIT()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("norm_final.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    state = {k: v.detach().float().clone() for k, v in model.state_dict().items()}

    ids = torch.randint(0, V - 1, (2, L), dtype=torch.int64)
    ids[0, 3:7] = V - 1  # MASK positions
    ids[1, ::2] = V - 1
    with torch.no_grad():
        logits = model.double()(ids, torch.zeros(2, dtype=torch.float64)).float()

    hf = {"backbone." + k: v for k, v in state.items()}
    write_json(os.path.join(OUT, "hf", "config.json"), hf_config(False))
    write_safetensors(os.path.join(OUT, "hf", "model.safetensors"), hf, {"format": "pt"})
    write_json(os.path.join(OUT, "sdtt", "config.json"), sdtt_config())
    write_safetensors(os.path.join(OUT, "sdtt", "model.safetensors"), hf, {"format": "pt"})
    write_json(os.path.join(OUT, "conditioned", "config.json"), hf_config(True))
    write_json(os.path.join(OUT, "lightning", "config.json"), hf_config(False))
    ckpt = {"state_dict": collections.OrderedDict(hf), "epoch": 1, "global_step": 10}
    torch.save(ckpt, os.path.join(OUT, "lightning", "model.ckpt"))
    write_safetensors(
        os.path.join(OUT, "expected.safetensors"),
        {"input_ids": ids.to(torch.int32), "logits": logits},
        {"source": "scripts/make-official-fixture.py", "sigma": "0"},
    )
    write_json(os.path.join(OUT, "official-keys.json"), {k: list(v.shape) for k, v in state.items()})


def hf_config(time_conditioning):
    return {
        "architectures": ["MDLM"],
        "auto_map": {
            "AutoConfig": "configuration_mdlm.MDLMConfig",
            "AutoModelForMaskedLM": "modeling_mdlm.MDLM",
        },
        "cond_dim": COND,
        "dropout": 0.1,
        "hidden_dim": D,
        "model_length": L,
        "model_type": "mdlm",
        "n_blocks": BLOCKS,
        "n_heads": HEADS,
        "return_dict": False,
        "time_conditioning": time_conditioning,
        "torch_dtype": "float32",
        "vocab_size": V,
    }


def sdtt_config():
    return {
        "mode": "train",
        "time_conditioning": False,
        "T": 0,
        "model": {
            "name": "tiny",
            "type": "ddit-orig",
            "hidden_size": D,
            "cond_dim": COND,
            "length": L,
            "n_blocks": BLOCKS,
            "n_heads": HEADS,
            "scale_by_sigma": True,
            "dropout": 0.1,
            "tie_word_embeddings": False,
        },
        "tokenizer": {"name": "bytes"},
        "parameterization": {"name": "multi-round-sdtt", "distill_mode": "kl-bwd"},
    }


if __name__ == "__main__":
    main()
