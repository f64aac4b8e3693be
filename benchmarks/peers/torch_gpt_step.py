#!/usr/bin/python3
"""PyTorch (float32; CPU, or CUDA with --device cuda) peer of one GPT-2 training step, for the
end-to-end benchmark.

Usage:  /usr/bin/python3 benchmarks/peers/torch_gpt_step.py [a|b|g|needle|tiny] [warmup=2] [steps=10] [threads]
                [--lr LR] [--state FILE] [--device cpu|cuda] [--tf32]
        (threads: omitted, 0 or "default" keeps torch's default; --state loads the weights and batch
        exported by the TF.js peer, for a cross-check)

Model: GPT-2 with Hugging Face semantics, written in plain torch (no transformers): pre-LN blocks,
learned position embeddings, causal multi-head attention with q|k|v from one [d,3d] Conv1D-style
matrix, MLP 4d with GELU-tanh, LayerNorm eps 1e-5, dropout 0, logits = LN_f(h)·Wlmᵀ (Wlm = wte when
tied). HF init: N(0, 0.02) weights/embeddings, c_proj weights N(0, 0.02/sqrt(2·n_layer)), biases 0.

Step: forward, masked-mean cross-entropy, backward, clip_grad_norm_(1.0), torch.optim.AdamW
(lr 5e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.1 on every parameter), zero grads.
The batch is fixed random data (the same every step), so the loss decreases.

Prints exactly one JSON line:
  {"shape":..., "ms_per_step":..., "losses":[...], "threads":..., "torch": version, ...}
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = {
    # (a): small GPT, tied head.
    "a": dict(vocab=512, context=128, d=128, heads=4, layers=2, batch=16, tied=True),
    # (b): the needle model 2_4_16, vocab 256, context 63, batch 1000, untied head (as in the paper's
    # algorithmic downstream stage).
    "b": dict(vocab=256, context=63, d=16, heads=4, layers=2, batch=1000, tied=False),
    # g: GPT-2 small (124M) at context 1024, batch 4: the real-GPU number of issue 6.
    "g": dict(vocab=50257, context=1024, d=768, heads=12, layers=12, batch=4, tied=True),
    # needle: shape (b) with the downstream needle task's loss mask: one loss position per row at 2n,
    # n uniform in 1..30; the step computes the head and the loss at those positions only, on the
    # batch cut after the last of them (the best way to compute this step; same loss and gradients).
    "needle": dict(vocab=256, context=63, d=16, heads=4, layers=2, batch=1000, tied=False, sparse=True),
    # tiny: for tests.
    "tiny": dict(vocab=11, context=5, d=8, heads=2, layers=1, batch=2, tied=True),
}


class GPT(torch.nn.Module):
    def __init__(self, vocab, context, d, heads, layers, tied):
        super().__init__()
        self.d, self.heads, self.n_layer, self.tied = d, heads, layers, tied
        P = torch.nn.Parameter
        std = 0.02
        proj_std = 0.02 / math.sqrt(2 * layers)
        self.wte = P(torch.randn(vocab, d) * std)
        self.wpe = P(torch.randn(context, d) * std)
        self.blocks = torch.nn.ModuleList()
        for _ in range(layers):
            b = torch.nn.Module()
            b.ln1_w, b.ln1_b = P(torch.ones(d)), P(torch.zeros(d))
            b.attn_w, b.attn_b = P(torch.randn(d, 3 * d) * std), P(torch.zeros(3 * d))
            b.proj_w, b.proj_b = P(torch.randn(d, d) * proj_std), P(torch.zeros(d))
            b.ln2_w, b.ln2_b = P(torch.ones(d)), P(torch.zeros(d))
            b.fc_w, b.fc_b = P(torch.randn(d, 4 * d) * std), P(torch.zeros(4 * d))
            b.mproj_w, b.mproj_b = P(torch.randn(4 * d, d) * proj_std), P(torch.zeros(d))
            self.blocks.append(b)
        self.lnf_w, self.lnf_b = P(torch.ones(d)), P(torch.zeros(d))
        self.lm_head = None if tied else P(torch.randn(vocab, d) * std)
        self.register_buffer("causal", torch.triu(torch.ones(context, context, dtype=torch.bool), 1))

    def forward(self, ids):
        B, T = ids.shape
        w = self.wte if self.tied else self.lm_head
        return torch.matmul(self.hidden(ids).reshape(B * T, self.d), w.t())  # [B*T, V]

    def head(self, h):
        return torch.matmul(h, (self.wte if self.tied else self.lm_head).t())

    def hidden(self, ids):
        """LN_f(h) [B, T, d]."""
        B, T = ids.shape
        d, H = self.d, self.heads
        hd = d // H
        h = self.wte[ids] + self.wpe[:T]
        mask = self.causal[:T, :T]
        for b in self.blocks:
            a = F.layer_norm(h, (d,), b.ln1_w, b.ln1_b, 1e-5)
            qkv = torch.addmm(b.attn_b, a.reshape(B * T, d), b.attn_w).view(B, T, 3, H, hd)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [B,H,T,hd] each
            s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
            s = s.masked_fill(mask, float("-inf"))
            att = torch.softmax(s, dim=-1)
            y = torch.matmul(att, v).transpose(1, 2).reshape(B * T, d)
            h = h + torch.addmm(b.proj_b, y, b.proj_w).view(B, T, d)
            m = F.layer_norm(h, (d,), b.ln2_w, b.ln2_b, 1e-5)
            f = F.gelu(torch.addmm(b.fc_b, m.reshape(B * T, d), b.fc_w), approximate="tanh")
            h = h + torch.addmm(b.mproj_b, f, b.mproj_w).view(B, T, d)
        return F.layer_norm(h, (d,), self.lnf_w, self.lnf_b, 1e-5)


def make_data(shape, seed=1234):
    """Fixed random batch: ids/targets are one random sequence shifted by one; the loss mask drops
    position 0 of every row (any mask works; the mean is over masked tokens)."""
    g = torch.Generator().manual_seed(seed)
    B, T, V = shape["batch"], shape["context"], shape["vocab"]
    seq = torch.randint(0, V, (B, T + 1), generator=g)
    if shape.get("sparse"):
        # the needle task's mask: one loss position per row at 2n, n uniform in 1..30
        mask = torch.zeros(B, T)
        pos = 2 * torch.randint(1, 31, (B,), generator=g)
        mask[torch.arange(B), pos] = 1
        return seq[:, :-1].contiguous(), seq[:, 1:].contiguous(), mask
    mask = torch.ones(B, T)
    if T > 1:
        mask[:, 0] = 0
    return seq[:, :-1].contiguous(), seq[:, 1:].contiguous(), mask


def blas_library():
    """The BLAS shared library torch's CPU gemm actually loaded (Debian's torch calls whatever
    libblas.so.3 resolves to: reference BLAS, OpenBLAS, BLIS...)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() or "blis" in line.lower()}
        libs = sorted(l for l in libs if l.startswith("/"))
        return ", ".join(libs) if libs else "unknown"
    except OSError:
        return "unknown"


def load_state(path):
    """A state written by the TF.js peer (GptStep.exportState()): shape, lr, weights by this module's
    parameter names (row-major), and the fixed batch."""
    with open(path) as f:
        st = json.load(f)
    shape = st["shape"]
    B, T = shape["batch"], shape["context"]
    ids = torch.tensor(st["ids"], dtype=torch.long).view(B, T)
    targets = torch.tensor(st["targets"], dtype=torch.long).view(B, T)
    mask = torch.tensor(st["mask"], dtype=torch.float32).view(B, T)
    return shape, st.get("lr"), st["weights"], (ids, targets, mask)


def parse_args(argv):
    import argparse

    ap = argparse.ArgumentParser(description="PyTorch CPU peer: one GPT-2 training step")
    ap.add_argument("shape", nargs="?", default="a", help="a | b | g | needle | tiny (ignored with --state)")
    ap.add_argument("warmup", nargs="?", type=int, default=2)
    ap.add_argument("steps", nargs="?", type=int, default=10)
    ap.add_argument("threads", nargs="?", default="default", help="torch threads (default: torch's)")
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default 5e-4)")
    ap.add_argument("--state", default=None, help="JSON state from the TF.js peer (weights + batch)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--tf32", action="store_true", help="on CUDA, let matmuls use TF32 (default: strict float32)")
    return ap.parse_args(argv[1:])


def main(argv):
    args = parse_args(argv)
    if args.threads not in ("default", "0", ""):
        torch.set_num_threads(int(args.threads))
    torch.manual_seed(0)
    if args.state:
        shape, lr, weights, data = load_state(args.state)
        name = "state"
    else:
        name = args.shape
        if name not in SHAPES:
            raise SystemExit(f"unknown shape {name!r}; expected one of {sorted(SHAPES)}")
        shape, lr, weights, data = SHAPES[name], None, None, None
    lr = args.lr if args.lr is not None else (lr if lr is not None else 5e-4)
    model = GPT(shape["vocab"], shape["context"], shape["d"], shape["heads"], shape["layers"], shape["tied"])
    if weights is not None:
        named = dict(model.named_parameters())
        missing = sorted(set(named) - set(weights))
        extra = sorted(set(weights) - set(named))
        if missing or extra:
            raise SystemExit(f"state does not match the model: missing {missing}, unexpected {extra}")
        with torch.no_grad():
            for k, p in named.items():
                w = weights[k]
                p.copy_(torch.tensor(w["data"], dtype=torch.float32).view(w["shape"]))
    ids, targets, mask = data if data is not None else make_data(shape)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch.cuda.is_available() is False")
        # Strict float32 like the engine (and TF.js) unless --tf32.
        torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
        torch.backends.cudnn.allow_tf32 = bool(args.tf32)
    model = model.to(dev)
    ids, targets, mask = ids.to(dev), targets.to(dev), mask.to(dev)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    flat_t, flat_m = targets.reshape(-1), mask.reshape(-1)
    denom = flat_m.sum()
    sparse = bool(shape.get("sparse"))
    if sparse:
        # Cut after the last loss position (later positions cannot reach the loss through causal
        # attention) and list the loss rows of the cut batch: the head and the loss run on those only.
        last = int(mask.nonzero()[:, 1].max()) + 1
        ids_c, mask_c = ids[:, :last].contiguous(), mask[:, :last].contiguous()
        rows = mask_c.reshape(-1).nonzero().squeeze(1)
        rows_t, rows_m = targets[:, :last].reshape(-1)[rows], mask_c.reshape(-1)[rows]

    def step():
        if sparse:
            h = model.hidden(ids_c).reshape(-1, model.d)[rows]
            ce = F.cross_entropy(model.head(h), rows_t, reduction="none")
            loss = (ce * rows_m).sum() / denom
        else:
            logits = model(ids)
            ce = F.cross_entropy(logits, flat_t, reduction="none")
            loss = (ce * flat_m).sum() / denom
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    # loss.item() synchronises with the device each step, so wall time is device time on CUDA too.
    losses = []
    for _ in range(args.warmup):
        losses.append(step())
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _ in range(args.steps):
        losses.append(step())
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    n = max(args.steps, 1)
    print(json.dumps({
        "shape": name,
        "dims": shape,
        "params": sum(p.numel() for p in params),
        "lr": lr,
        "warmup": args.warmup,
        "steps": args.steps,
        "ms_per_step": elapsed * 1e3 / n,
        "cpu_ms_per_step": cpu * 1e3 / n,
        "losses": losses,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "blas": blas_library(),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "tf32": bool(args.tf32) and dev.type == "cuda",
    }))


if __name__ == "__main__":
    main(sys.argv)
