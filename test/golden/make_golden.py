#!/usr/bin/env python3
"""Golden data for whole-model parity of the kindling engine against PyTorch.

Regenerate (Debian's python3 with torch 1.13 and numpy; no `safetensors`/`transformers` packages needed;
node + tsx from the repo are used for the interop check only):

    /usr/bin/python3 test/golden/make_golden.py

The outputs are deterministic (fixed seeds, float64 CPU math): running the script again rewrites the
same bytes. Nothing here runs at test time; the TypeScript tests read the committed files.

What it builds
--------------
A small GPT-2 written here from scratch with Hugging Face semantics (spec section 3.2): pre-LayerNorm
blocks, LayerNorm eps 1e-5 (biased variance), GELU with the tanh approximation, Conv1D weight layout
[in, out] (y = x W + b), fused c_attn split into q | k | v with heads contiguous, attention scaled by
1/sqrt(head_dim) with a causal mask, learned position embeddings, and a tied (lm_head = wte) or untied
(separate lm_head [V, d], no bias) head. Dropout is 0.

    n_layer 2, n_head 4, n_embd 64 (head_dim 16), vocab 101, n_positions 33; batch B = 3, T = 33.

Weights are drawn once from numpy's PCG64 (seed below) with spreads larger than the HF init (so that
attention and softmax are far from uniform), rounded to float32, and every computation then runs in
float64 on those float32 values. Inputs: ids and targets in [0, 101) and a float loss mask in {0, 1}
with some positions masked out (a whole prefix of row 2 included).

Two variants, each written to gpt_{variant}.safetensors (float32 / int32) + gpt_{variant}.json:

  tied    lm_head = wte; weight decay 0.1 on EVERY parameter (the procedural trainer, spec section 4)
  untied  separate lm_head; weight decay 0.1 except biases and LayerNorm parameters (the HF Trainer
          rule, spec sections 6.1/7.1: names ending in "bias" and ln_1/ln_2/ln_f weights are exempt)

Contents of gpt_{variant}.safetensors:
  ids [3,33] I32, targets [3,33] I32, mask [3,33] F32         the batch
  init.<name>                                                  initial weights, HF names (transformer.…)
  logits [3,33,101]                                            forward output with the initial weights
  grad.<name>                                                  d loss / d param at the initial weights
  final.<name>                                                 weights after the 10 AdamW steps
and the JSON holds the config, loss (float64), the 10 losses / learning rates / pre-clip gradient norms /
clip coefficients, the optimizer settings, and which parameters are exempt from weight decay.

What the engine must reproduce (the lead's parity test)
-------------------------------------------------------
  * logits and the loss within 1e-4 relative error (Frobenius norm of the difference / norm of the
    reference), loss = sum(CE(logits[b,t], targets[b,t]) * mask[b,t]) / sum(mask)  (masked mean);
  * every parameter gradient within 1e-3 relative (per tensor). Tied: the wte gradient is the sum of
    the embedding and the output-head contributions;
  * the 10 losses of 10 AdamW steps on the same batch, each within 1e-4 relative, where step s
    (s = 0..9) does, in this order:
        loss_s = loss(params); grads = d loss_s / d params
        norm_s = sqrt(sum over all parameters of sum(g^2))                     (pre-clip, recorded)
        coef_s = min(1, max_norm / (norm_s + 1e-6)); grads *= coef_s            (torch clip_grad_norm_)
        lr_s   = 1e-3 * f(s), f(s) = s/3 for s < 3, else 0.5 (1 + cos(pi (s-3)/(10-3)))
                 (HF get_cosine_schedule_with_warmup, warmup 3, total 10: lr_0 = 0, so the first step
                  only updates the Adam moments and loss_1 == loss_0)
        AdamW (torch.optim.AdamW, decoupled decay, t = s+1):
          p *= 1 - lr_s * wd_p
          m = 0.9 m + 0.1 g ;  v = 0.999 v + 0.001 g^2
          p -= lr_s * (m / (1 - 0.9^t)) / (sqrt(v / (1 - 0.999^t)) + 1e-8)
    and the weights after step 9 are final.<name>. Final weights agree per tensor within 1e-4 relative,
    EXCEPT the key slice [d, 2d) of every attn.c_attn.bias: its true gradient is exactly 0 (adding a
    constant to every key score of a row leaves the softmax unchanged), so in float32 Adam normalises
    rounding noise (|g| ~ 1e-10 against eps 1e-8) into updates of up to ~1e-4 (PyTorch float32 itself
    lands 1.5e-4 away from the float64 values there). Compare that slice with an absolute tolerance
    (2e-3 is safe) or skip it; the JSON lists these slices under "noise_slices".

Measured with PyTorch float32 on the same inputs (what a correct f32 engine should see): logits 5e-7,
loss 5e-8, gradients <= 9e-7, the 10 losses <= 2e-7 relative.

Also written (safetensors interop, no Python needed at test time):
  interop_python.safetensors / .json   tensors of every dtype the reader converts (F32, F64, F16, BF16,
                                       I64, I32, I16, I8, U8, BOOL, a scalar, an empty tensor) with
                                       metadata, written by the Python writer below, plus their values
  interop_layout.safetensors           F32 + I32 tensors written by the Python writer in the reference
                                       layout; the TS encoder must produce the same bytes.
The script also runs the TypeScript writer (src/io/safetensors.ts, through node + tsx) on the same
tensors and checks here that the Python reader reads its bytes back exactly, and saves the initial
weights as an engine checkpoint (src/io/checkpoint.ts) from which this script rebuilds the model using
only the checkpoint's config.json and model.safetensors and reproduces the reference logits.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
from collections import OrderedDict

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

CONFIG = dict(n_layer=2, n_head=4, n_embd=64, vocab_size=101, n_positions=33, layer_norm_epsilon=1e-5)
B, T = 3, 33
SEED = 20260121
STEPS = 10
LR = 1e-3
WARMUP = 3
BETAS = (0.9, 0.999)
EPS = 1e-8
WEIGHT_DECAY = 0.1
MAX_NORM = 1.0

torch.set_default_dtype(torch.float64)

# ------------------------------------------------------------------------------------------------
# A tiny safetensors writer / reader (struct + json + numpy), following the reference layout:
# __metadata__ first, tensors sorted by dtype (descending, in the reference crate's Dtype order) then
# by name, compact JSON padded with spaces to a multiple of 8 bytes.

ST_DTYPES = {
    "BOOL": (np.dtype(np.bool_), 0),
    "U8": (np.dtype("<u1"), 4),
    "I8": (np.dtype("<i1"), 5),
    "I16": (np.dtype("<i2"), 9),
    "U16": (np.dtype("<u2"), 10),
    "F16": (np.dtype("<f2"), 11),
    "BF16": (None, 12),
    "I32": (np.dtype("<i4"), 13),
    "U32": (np.dtype("<u4"), 14),
    "F32": (np.dtype("<f4"), 15),
    "F64": (np.dtype("<f8"), 17),
    "I64": (np.dtype("<i8"), 18),
    "U64": (np.dtype("<u8"), 19),
}


def _np_to_st(arr: np.ndarray, bf16: bool = False) -> tuple[str, bytes]:
    if bf16:
        f32 = np.ascontiguousarray(arr, dtype="<f4")
        bits = f32.view("<u4")
        # round to nearest even, as torch does when casting to bfloat16
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
        return "BF16", rounded.tobytes()
    for name, (dt, _) in ST_DTYPES.items():
        if dt is not None and arr.dtype == dt:
            return name, np.ascontiguousarray(arr).tobytes()
    raise TypeError(f"unsupported dtype {arr.dtype}")


def st_encode(tensors: "OrderedDict[str, np.ndarray]", metadata: dict | None = None, bf16: set | None = None) -> bytes:
    bf16 = bf16 or set()
    items = []
    for name, arr in tensors.items():
        dtype, raw = _np_to_st(arr, name in bf16)
        items.append((name, dtype, list(arr.shape), raw))
    items.sort(key=lambda it: (-ST_DTYPES[it[1]][1], it[0].encode("utf-8")))
    header: dict = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, raw in items:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    js += b" " * ((8 - len(js) % 8) % 8)
    return struct.pack("<Q", len(js)) + js + b"".join(raw for _, _, _, raw in items)


def st_decode(buf: bytes) -> tuple[dict, dict]:
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n].decode("utf-8"))
    data = buf[8 + n :]
    metadata = header.pop("__metadata__", {}) or {}
    out = {}
    end = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = info["data_offsets"]
        assert b == end, f"{name}: hole or overlap"
        end = e
        raw = data[b:e]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype("<u4") << 16).view("<f4")
        else:
            arr = np.frombuffer(raw, dtype=ST_DTYPES[info["dtype"]][0])
        out[name] = (info["dtype"], arr.reshape(info["shape"]))
    assert end == len(data), "trailing bytes"
    return out, metadata


def st_save(path: str, tensors, metadata=None, bf16=None) -> str:
    buf = st_encode(tensors, metadata, bf16)
    with open(path, "wb") as f:
        f.write(buf)
    return hashlib.sha256(buf).hexdigest()


# ------------------------------------------------------------------------------------------------
# The model (float64, HF GPT-2 semantics)


def param_names(cfg: dict, tied: bool) -> list[str]:
    names = ["transformer.wte.weight", "transformer.wpe.weight"]
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        names += [
            p + "ln_1.weight", p + "ln_1.bias",
            p + "attn.c_attn.weight", p + "attn.c_attn.bias",
            p + "attn.c_proj.weight", p + "attn.c_proj.bias",
            p + "ln_2.weight", p + "ln_2.bias",
            p + "mlp.c_fc.weight", p + "mlp.c_fc.bias",
            p + "mlp.c_proj.weight", p + "mlp.c_proj.bias",
        ]
    names += ["transformer.ln_f.weight", "transformer.ln_f.bias"]
    if not tied:
        names.append("lm_head.weight")
    return names


def param_shape(cfg: dict, name: str) -> tuple[int, ...]:
    d, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    if name.endswith("wte.weight") or name == "lm_head.weight":
        return (V, d)
    if name.endswith("wpe.weight"):
        return (P, d)
    if "c_attn.weight" in name:
        return (d, 3 * d)
    if "c_attn.bias" in name:
        return (3 * d,)
    if "attn.c_proj.weight" in name:
        return (d, d)
    if "c_fc.weight" in name:
        return (d, 4 * d)
    if "c_fc.bias" in name:
        return (4 * d,)
    if "mlp.c_proj.weight" in name:
        return (4 * d, d)
    return (d,)  # LayerNorm weights/biases and the d-sized biases


def make_params(cfg: dict, tied: bool, seed: int) -> "OrderedDict[str, np.ndarray]":
    rng = np.random.default_rng(seed)
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for name in param_names(cfg, tied):
        shape = param_shape(cfg, name)
        if name.endswith("wte.weight") or name == "lm_head.weight":
            x = rng.normal(0.0, 0.1, shape)
        elif name.endswith("wpe.weight"):
            x = rng.normal(0.0, 0.05, shape)
        elif ".ln_" in name and name.endswith(".weight"):
            x = 1.0 + rng.normal(0.0, 0.1, shape)
        elif ".ln_" in name:
            x = rng.normal(0.0, 0.05, shape)
        elif name.endswith(".bias"):
            x = rng.normal(0.0, 0.02, shape)
        elif "c_proj.weight" in name:
            x = rng.normal(0.0, 0.05, shape)
        else:
            x = rng.normal(0.0, 0.1, shape)
        out[name] = x.astype(np.float32)
    return out


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased variance
    return (x - mu) / torch.sqrt(var + eps) * w + b


def forward(P: dict, ids: torch.Tensor, cfg: dict, tied: bool) -> torch.Tensor:
    d, H = cfg["n_embd"], cfg["n_head"]
    hd = d // H
    eps = cfg["layer_norm_epsilon"]
    Bn, Tn = ids.shape
    h = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][:Tn]
    causal = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        a = layer_norm(h, P[p + "ln_1.weight"], P[p + "ln_1.bias"], eps)
        qkv = a @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(d, dim=-1)
        q, k, v = (t.reshape(Bn, Tn, H, hd).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(~causal, float("-inf"))
        att = torch.softmax(s, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(Bn, Tn, d)
        h = h + (y @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"])
        m = layer_norm(h, P[p + "ln_2.weight"], P[p + "ln_2.bias"], eps)
        f = gelu_tanh(m @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"])
        h = h + (f @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"])
    h = layer_norm(h, P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
    head = P["transformer.wte.weight"] if tied else P["lm_head.weight"]
    return h @ head.T


def masked_mean_ce(logits, targets, mask):
    logp = torch.log_softmax(logits, dim=-1)
    ce = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (ce * mask).sum() / mask.sum()


def lr_factor(s: int) -> float:
    # transformers.get_cosine_schedule_with_warmup(num_warmup_steps=3, num_training_steps=10)
    if s < WARMUP:
        return s / max(1, WARMUP)
    progress = (s - WARMUP) / max(1, STEPS - WARMUP)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


def no_decay(name: str) -> bool:
    # HF Trainer: parameters of LayerNorm modules and every bias are exempt.
    return name.endswith("bias") or ".ln_" in name


def make_batch(seed: int):
    rng = np.random.default_rng(seed + 1)
    V = CONFIG["vocab_size"]
    ids = rng.integers(0, V, size=(B, T)).astype(np.int32)
    ids[0, 0], ids[1, 5] = 0, V - 1
    targets = rng.integers(0, V, size=(B, T)).astype(np.int32)
    targets[2, -1] = V - 1
    mask = (rng.random((B, T)) > 0.3).astype(np.float32)
    mask[2, :10] = 0.0
    mask[0, -1] = 1.0
    return ids, targets, mask


def run_variant(tied: bool) -> None:
    variant = "tied" if tied else "untied"
    cfg = dict(CONFIG)
    init = make_params(cfg, tied, SEED + (0 if tied else 1))
    ids_np, targets_np, mask_np = make_batch(SEED)
    ids = torch.from_numpy(ids_np.astype(np.int64))
    targets = torch.from_numpy(targets_np.astype(np.int64))
    mask = torch.from_numpy(mask_np.astype(np.float64))

    params = OrderedDict((n, torch.tensor(a.astype(np.float64), requires_grad=True)) for n, a in init.items())

    # Forward + backward at the initial weights.
    logits = forward(params, ids, cfg, tied)
    loss = masked_mean_ce(logits, targets, mask)
    loss.backward()
    logits0 = logits.detach().numpy().astype(np.float32)
    grads0 = OrderedDict((n, p.grad.detach().numpy().astype(np.float32)) for n, p in params.items())
    loss0 = float(loss.item())
    for p in params.values():
        p.grad = None

    # 10 AdamW steps on the same batch.
    exempt = [n for n in params if (not tied) and no_decay(n)]
    decay_params = [p for n, p in params.items() if n not in exempt]
    nodecay_params = [p for n, p in params.items() if n in exempt]
    groups = [{"params": decay_params, "weight_decay": WEIGHT_DECAY}]
    if nodecay_params:
        groups.append({"params": nodecay_params, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    losses, lrs, norms, coefs = [], [], [], []
    for s in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        assert abs(lrs[-1] - LR * lr_factor(s)) < 1e-18
        opt.zero_grad(set_to_none=True)
        loss = masked_mean_ce(forward(params, ids, cfg, tied), targets, mask)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(list(params.values()), MAX_NORM).item())
        losses.append(float(loss.item()))
        norms.append(norm)
        coefs.append(min(1.0, MAX_NORM / (norm + 1e-6)))
        opt.step()
        sched.step()
    assert losses[0] == loss0
    assert any(n > MAX_NORM for n in norms), f"{variant}: gradient clipping never triggered: {norms}"
    final = OrderedDict((n, p.detach().numpy().astype(np.float32)) for n, p in params.items())

    print(f"[{variant}] loss0 = {loss0:.10f}")
    print(f"[{variant}] pre-clip grad norms: " + ", ".join(f"{x:.4f}" for x in norms))
    print(f"[{variant}] clipped at steps {[i for i, x in enumerate(norms) if x > MAX_NORM]}")
    print(f"[{variant}] losses: " + ", ".join(f"{x:.6f}" for x in losses))

    tensors: OrderedDict[str, np.ndarray] = OrderedDict()
    tensors["ids"] = ids_np
    tensors["targets"] = targets_np
    tensors["mask"] = mask_np
    tensors["logits"] = logits0
    for n, a in init.items():
        tensors["init." + n] = a
    for n, a in grads0.items():
        tensors["grad." + n] = a
    for n, a in final.items():
        tensors["final." + n] = a
    st_path = os.path.join(HERE, f"gpt_{variant}.safetensors")
    digest = st_save(st_path, tensors, {"format": "kindling-golden", "variant": variant})

    # Round trip through the reader (sanity of the writer).
    back, _ = st_decode(open(st_path, "rb").read())
    for n, a in tensors.items():
        assert np.array_equal(back[n][1], a), n

    meta = {
        "description": "PyTorch float64 reference for a 2-layer GPT-2 (see test/golden/make_golden.py)",
        "variant": variant,
        "generator": "test/golden/make_golden.py",
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "safetensors_sha256": digest,
        "config": {**cfg, "tie_word_embeddings": tied, "dropout": 0.0, "activation_function": "gelu_new"},
        "batch": {"B": B, "T": T, "mask_sum": float(mask_np.sum())},
        "param_names": list(init.keys()),
        "loss": loss0,
        "loss_definition": "sum(CE * mask) / sum(mask)",
        "optimizer": {
            "name": "AdamW (torch.optim.AdamW, decoupled weight decay)",
            "lr": LR,
            "betas": list(BETAS),
            "eps": EPS,
            "weight_decay": WEIGHT_DECAY,
            "weight_decay_rule": "all parameters" if tied else "biases and LayerNorm parameters exempt (HF Trainer)",
            "no_decay": exempt,
            "max_grad_norm": MAX_NORM,
            "clip": "coef = min(1, max_norm / (total_norm + 1e-6)), total_norm = global L2 norm of all gradients",
            "schedule": "HF cosine with warmup: f(s) = s/3 for s < 3, else 0.5*(1 + cos(pi*(s-3)/7)); step s uses lr*f(s)",
            "warmup_steps": WARMUP,
            "total_steps": STEPS,
        },
        "steps": STEPS,
        "losses": losses,
        "lrs": lrs,
        "grad_norms_pre_clip": norms,
        "clip_coefs": coefs,
        "tolerances": {
            "logits": 1e-4,
            "loss": 1e-4,
            "grads": 1e-3,
            "losses": 1e-4,
            "final": 1e-4,
            "metric": "relative Frobenius error per tensor",
            "noise_slices_abs": 2e-3,
        },
        "noise_slices": {
            f"transformer.h.{i}.attn.c_attn.bias": [cfg["n_embd"], 2 * cfg["n_embd"]] for i in range(cfg["n_layer"])
        },
        "noise_slices_why": "true gradient 0 (softmax shift invariance): final values there are float32 noise amplified by Adam",
    }
    with open(os.path.join(HERE, f"gpt_{variant}.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


# ------------------------------------------------------------------------------------------------
# Safetensors interop files


def bf16_value(x: float) -> float:
    bits = np.array([x], dtype="<f4").view("<u4")
    r = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u4") << 16
    return float(r.view("<f4")[0])


def interop_tensors() -> "OrderedDict[str, np.ndarray]":
    t: OrderedDict[str, np.ndarray] = OrderedDict()
    t["f32.matrix"] = np.array([[1.5, -2.25, 3.0], [1e-7, 65504.0, -0.0]], dtype="<f4")
    t["f64.vector"] = np.array([1.0 / 3.0, -2.5, 1e-300, 123456789.123456789], dtype="<f8")
    t["f16.vector"] = np.array([1.0 / 3.0, -2.5, 65504.0, 6e-8, -0.0, 0.1], dtype="<f2")
    t["bf16.vector"] = np.array([1.0 / 3.0, -2.5, 3.0e38, 1e-3], dtype="<f4")  # stored as BF16
    t["i64.vector"] = np.array([0, -1, 2147483647, -2147483648, 42], dtype="<i8")
    t["i32.matrix"] = np.array([[1, -2], [3, -4]], dtype="<i4")
    t["i16.vector"] = np.array([-32768, 32767, 5], dtype="<i2")
    t["i8.vector"] = np.array([-128, 127, 0], dtype="<i1")
    t["u8.vector"] = np.array([0, 255, 17], dtype="<u1")
    t["bool.vector"] = np.array([True, False, True], dtype=np.bool_)
    t["scalar"] = np.array(2.5, dtype="<f4")
    t["empty"] = np.zeros((0, 4), dtype="<f4")
    return t


def layout_tensors() -> "OrderedDict[str, np.ndarray]":
    rng = np.random.default_rng(7)
    t: OrderedDict[str, np.ndarray] = OrderedDict()
    t["transformer.wte.weight"] = rng.normal(size=(5, 3)).astype("<f4")
    t["b.ids"] = np.array([[3, 1, 4], [1, 5, 9]], dtype="<i4")
    t["transformer.h.0.ln_1.bias"] = rng.normal(size=(3,)).astype("<f4")
    t["a"] = np.array(1.0, dtype="<f4")
    t["Z.upper"] = np.arange(7, dtype="<f4")
    return t


LAYOUT_METADATA = {"format": "pt", "note": "layout check ü"}


def write_interop() -> None:
    t = interop_tensors()
    meta = {"format": "pt", "writer": "make_golden.py"}
    st_save(os.path.join(HERE, "interop_python.safetensors"), t, meta, bf16={"bf16.vector"})
    expected = {}
    for n, a in t.items():
        if n == "bf16.vector":
            vals = [bf16_value(float(x)) for x in a.reshape(-1)]
            dtype = "BF16"
        else:
            dtype = _np_to_st(a)[0]
            if a.dtype.kind == "f":
                # every float dtype is read as float32: the stored value rounded to float32
                vals = [float(np.float32(float(x))) for x in a.reshape(-1)]
            else:
                vals = [int(x) for x in a.reshape(-1)]
        expected[n] = {"dtype": dtype, "shape": list(a.shape), "values": vals}
    with open(os.path.join(HERE, "interop_python.json"), "w") as f:
        json.dump({"metadata": meta, "tensors": expected}, f, indent=2)
        f.write("\n")
    st_save(os.path.join(HERE, "interop_layout.safetensors"), layout_tensors(), LAYOUT_METADATA)


TS_WRITER = r"""
import { writeSafetensors } from './src/io/safetensors.ts';
const rows = JSON.parse(process.env.KINDLING_TENSORS);
const tensors = new Map();
for (const [name, t] of Object.entries(rows)) {
  const data = t.dtype === 'I32' ? Int32Array.from(t.values) : Float32Array.from(t.values);
  tensors.set(name, { shape: t.shape, data });
}
writeSafetensors(process.env.KINDLING_OUT, tensors, JSON.parse(process.env.KINDLING_META));
"""


def check_ts_writer() -> None:
    """Runs the TypeScript writer on the layout tensors; the Python reader must read them exactly and the
    bytes must equal the Python writer's."""
    t = layout_tensors()
    rows = {
        n: {"dtype": "I32" if a.dtype.kind == "i" else "F32", "shape": list(a.shape), "values": a.reshape(-1).tolist()}
        for n, a in t.items()
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ts.safetensors")
        env = dict(os.environ, KINDLING_TENSORS=json.dumps(rows), KINDLING_OUT=out, KINDLING_META=json.dumps(LAYOUT_METADATA))
        try:
            subprocess.run(
                ["node", "--import", "tsx", "--input-type=module", "-e", TS_WRITER], cwd=REPO, env=env, check=True
            )
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"WARNING: could not run the TypeScript writer ({e}); interop check skipped", file=sys.stderr)
            return
        ts_bytes = open(out, "rb").read()
    back, meta = st_decode(ts_bytes)
    assert meta == LAYOUT_METADATA, meta
    assert set(back) == set(t), sorted(back)
    for n, a in t.items():
        assert back[n][1].dtype == a.dtype and np.array_equal(back[n][1], a), n
    py_bytes = open(os.path.join(HERE, "interop_layout.safetensors"), "rb").read()
    assert ts_bytes == py_bytes, "TS and Python writers produce different bytes"
    print("TS writer: read back exactly by the Python reader; bytes identical to the Python writer's")


TS_CHECKPOINT = r"""
import { readSafetensors } from './src/io/safetensors.ts';
import { saveCheckpoint } from './src/io/checkpoint.ts';
import { makeConfig, toHfConfig } from './src/model/config.ts';
const t = readSafetensors(process.env.KINDLING_GOLDEN).tensors;
const params = new Map(), shapes = new Map();
for (const [k, x] of t) if (k.startsWith('init.')) { params.set(k.slice(5), x.data); shapes.set(k.slice(5), x.shape); }
const c = JSON.parse(process.env.KINDLING_CONFIG);
const cfg = makeConfig({ size: `${c.n_layer}_${c.n_head}_${c.n_embd}`, vocabSize: c.vocab_size, nPositions: c.n_positions, tied: c.tie_word_embeddings, dropout: 0 });
saveCheckpoint(process.env.KINDLING_OUT, { config: cfg, params, shapes, step: 0, hfConfig: toHfConfig(cfg) });
"""


def check_ts_checkpoint(tied: bool) -> None:
    """Saves the initial weights as an engine checkpoint (src/io/checkpoint.ts through node + tsx); the
    Python side must rebuild the model from its config.json + model.safetensors alone and reproduce the
    reference logits."""
    variant = "tied" if tied else "untied"
    meta = json.load(open(os.path.join(HERE, f"gpt_{variant}.json")))
    golden, _ = st_decode(open(os.path.join(HERE, f"gpt_{variant}.safetensors"), "rb").read())
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ckpt")
        env = dict(
            os.environ,
            KINDLING_GOLDEN=os.path.join(HERE, f"gpt_{variant}.safetensors"),
            KINDLING_CONFIG=json.dumps(meta["config"]),
            KINDLING_OUT=out,
        )
        try:
            subprocess.run(["node", "--import", "tsx", "--input-type=module", "-e", TS_CHECKPOINT], cwd=REPO, env=env, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"WARNING: could not run the TypeScript checkpoint writer ({e}); check skipped", file=sys.stderr)
            return
        sd, st_meta = st_decode(open(os.path.join(out, "model.safetensors"), "rb").read())
        hf = json.load(open(os.path.join(out, "config.json")))
    assert st_meta.get("format") == "pt", st_meta
    assert ("lm_head.weight" in sd) == (not hf["tie_word_embeddings"]) and hf["tie_word_embeddings"] == tied
    cfg = {k: hf[k] for k in ("n_layer", "n_head", "n_embd", "vocab_size", "n_positions", "layer_norm_epsilon")}
    P = {k: torch.tensor(a.astype(np.float64)) for k, (_, a) in sd.items()}
    logits = forward(P, torch.from_numpy(golden["ids"][1].astype(np.int64)), cfg, tied).numpy()
    err = float(np.abs(logits - golden["logits"][1]).max())
    assert err < 1e-5, err
    print(f"[{variant}] engine checkpoint (config.json + model.safetensors) rebuilds the reference logits (max |diff| {err:.1e})")


def main() -> None:
    torch.manual_seed(0)
    write_interop()
    check_ts_writer()
    run_variant(tied=True)
    run_variant(tied=False)
    check_ts_checkpoint(tied=True)
    check_ts_checkpoint(tied=False)
    for f in sorted(os.listdir(HERE)):
        if f.endswith((".safetensors", ".json")):
            print(f"{f}: {os.path.getsize(os.path.join(HERE, f))} bytes")


if __name__ == "__main__":
    main()
