#!/usr/bin/env python3
"""Build the reference fixtures that the Rust tests compare against.

Outputs (all committed, a few MB in total; CI never runs this script):
  assets/tokenizer/tokenizer.json        the real Mistral-7B v0.1/v0.2 tokenizer + [PAD] (id 32000)
  tests/fixtures/tiny-mha/               tiny MistralForSequenceClassification, MHA, bf16 shards
  tests/fixtures/tiny-gqa-window/        GQA, explicit head_dim != hidden/heads, sliding window 24
  tests/fixtures/<model>/config.v4.json  the same config in the transformers 4.x dialect
  tests/fixtures/<model>/reference.json  token ids and logits from transformers (f32 and bf16 compute)
  tests/fixtures/tiny-mha-bin/           tiny-mha's weights as a PyTorch pickle (pytorch_model.bin)
  assets/demo/                           the random-weight demo model (score head with a bias)

Requirements (only to regenerate): torch, transformers>=5, tokenizers, mistral-common, safetensors,
sentencepiece, protobuf.  Run from the repository root:  python3 scripts/make_fixtures.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import sentencepiece as spm
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = (
    "[INST] You must read the following conversation carefully and rate the assistant's response "
    "from score 0-100 in these aspects: helpfulness, correctness, coherence, honesty, complexity, "
    "verbosity\n\nUser: {prompt}\n\nAssistant: {response} [/INST]"
)
DPA_LABELS = [
    "helpsteer-helpfulness",
    "helpsteer-correctness",
    "helpsteer-coherence",
    "helpsteer-complexity",
    "helpsteer-verbosity",
    "ultrafeedback-overall_score",
    "ultrafeedback-instruction_following",
    "ultrafeedback-truthfulness",
    "ultrafeedback-honesty",
    "ultrafeedback-helpfulness",
]
SEED_PROMPT = 'What are some synonyms for the word "beautiful"?'
SEED_RESPONSE = "Nicely, Beautifully, Handsome, Stunning, Wonderful, Gorgeous, Pretty, Stunning, Elegant"

LONG_RESPONSE = (
    "Here is a longer answer that runs well past the sliding window of the small test model. "
    "It lists several points:\n1. First, be clear.\n2. Second, be correct.\n3. Third, be brief "
    "when brevity helps the reader, and thorough when the question calls for depth.\n"
    "Finally, it ends with a short summary so that the last tokens see only a window of the text."
)

PAIRS = [
    (SEED_PROMPT, SEED_RESPONSE),
    ("Explain gravity in one sentence.", "Mass bends spacetime, and objects follow that curvature."),
    ("Traduis « café » en anglais, s'il te plaît.", "« Café » se dit « coffee » — ou « café » pour l'endroit."),
    ("日本の首都はどこですか？", "東京です。🗼 It is Tokyo."),
    ("Say something nice 🎉", "You're doing great! 👩‍👩‍👧 ✨🚀"),
    ("Line one\nLine two\n\n", "Answer with\ttabs\tand\nnewlines\n"),
    ("", "An answer to an empty prompt."),
    ("A prompt with an empty answer.", ""),
    ("", ""),
    ("  leading and trailing spaces  ", "   indented   "),
    ("Write a long answer.", LONG_RESPONSE),
    ("Literal control text </s> and <s> and [PAD] typed by a user", "Ok </s>"),
    ("مرحبا كيف حالك؟", "أنا بخير، شكرا!"),
]
# Inputs scored with a small --max-tokens so that left truncation is exercised.
TRUNCATION_MAX_TOKENS = 48


# ---------------------------------------------------------------------------------------------
# Tokenizer: rebuild Mistral's tokenizer.json from the SentencePiece model exactly as the
# transformers 4.x LlamaConverter produced it for the hub (legacy, prefix space, byte fallback).
# transformers 5.x's converter passes vocab scores where its extractor expects a model type, and
# orders tied merges differently; doing the conversion here keeps the 4.x result.
# ---------------------------------------------------------------------------------------------
def spm_model_path() -> Path:
    import mistral_common

    return Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"


def merges_4x(vocab: dict[str, int], vocab_scores: dict[str, float]) -> list[tuple[str, str]]:
    merges = []
    for merge, piece_score in vocab_scores.items():
        local = []
        for index in range(1, len(merge)):
            piece_l, piece_r = merge[:index], merge[index:]
            if piece_l in vocab and piece_r in vocab:
                local.append((piece_l, piece_r, piece_score))
        local = sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges = sorted(merges, key=lambda val: val[2], reverse=True)
    return [(a, b) for a, b, _ in merges]


def build_tokenizer(model_file: Path) -> Tokenizer:
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    n = sp.GetPieceSize()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    # LlamaConverter.vocab: ids 0..2 get score 0, the rest keep the SentencePiece scores.
    scores = {sp.id_to_piece(i): (0.0 if i < 3 else sp.GetScore(i)) for i in range(n)}
    tok = Tokenizer(
        BPE(vocab=vocab, merges=merges_4x(vocab, scores), unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    )
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens(
        [AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    # The DPA training scripts add a [PAD] token and resize the embeddings (vocab 32001).
    tok.add_special_tokens([AddedToken("[PAD]", normalized=False, special=True)])
    assert tok.token_to_id("[PAD]") == 32000
    return tok


def check_tokenizer(tok: Tokenizer, model_file: Path) -> None:
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    seed = tok.encode(TEMPLATE.format(prompt=SEED_PROMPT, response=SEED_RESPONSE)).ids
    assert len(seed) == 102 and seed[:4] == [1, 733, 16289, 28793], seed[:8]
    for p, r in PAIRS:
        text = TEMPLATE.format(prompt=p, response=r)
        if "<s>" in text or "[PAD]" in text:
            continue  # SentencePiece has no notion of added tokens in text
        ours = tok.encode(text).ids
        theirs = [1] + sp.encode(text)
        assert ours == theirs, (text, ours, theirs)


def tokenizer_config() -> dict:
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "[PAD]",
        "model_max_length": 32768,
        "padding_side": "right",
        "truncation_side": "left",
        "tokenizer_class": "LlamaTokenizerFast",
        "legacy": True,
        "clean_up_tokenization_spaces": False,
    }


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
def make_config(**kw):
    from transformers import MistralConfig

    base = dict(
        vocab_size=32001,
        pad_token_id=32000,
        bos_token_id=1,
        eos_token_id=2,
        num_labels=10,
        max_position_embeddings=32768,
        rms_norm_eps=1e-5,
        rope_theta=1e6,
        tie_word_embeddings=False,
        hidden_act="silu",
        initializer_range=0.15,
    )
    base.update(kw)
    cfg = MistralConfig(**base)
    cfg.problem_type = "regression"
    return cfg


def build_model(cfg, seed: int, score_std: float, score_bias: float | None):
    from transformers import MistralForSequenceClassification

    torch.manual_seed(seed)
    model = MistralForSequenceClassification(cfg).eval()
    with torch.no_grad():
        # Norm weights near 1 but not exactly, so that a missing norm would show.
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
        model.score.weight.normal_(0.0, score_std)
        if score_bias is not None:
            hidden = model.score.in_features
            model.score = torch.nn.Linear(hidden, cfg.num_labels, bias=True)
            model.score.weight.normal_(0.0, score_std)
            model.score.bias.copy_(score_bias + torch.randn(cfg.num_labels) * 5.0)
    return model


def save_model(model, out: Path, max_shard_size: str | None) -> None:
    if out.exists():
        shutil.rmtree(out)
    model = model.to(torch.bfloat16)
    kwargs = {"safe_serialization": True}
    if max_shard_size:
        kwargs["max_shard_size"] = max_shard_size
    model.save_pretrained(out, **kwargs)


def load_for_reference(out: Path, dtype, with_bias: bool):
    from transformers import MistralForSequenceClassification
    from safetensors.torch import load_file

    model = MistralForSequenceClassification.from_pretrained(out, dtype=dtype, attn_implementation="eager").eval()
    if with_bias:
        # The stock class has no score bias; graft it on as the DPA authors' subclass may.
        files = sorted(out.glob("*.safetensors"))
        sd = {}
        for f in files:
            sd.update(load_file(f))
        w, b = sd["score.weight"], sd["score.bias"]
        head = torch.nn.Linear(w.shape[1], w.shape[0], bias=True)
        with torch.no_grad():
            head.weight.copy_(w.to(dtype))
            head.bias.copy_(b.to(dtype))
        model.score = head.to(dtype)
    return model


def reference(out: Path, tok_dir: Path, with_bias: bool = False) -> dict:
    from transformers import PreTrainedTokenizerFast

    hf_tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"), **tokenizer_config())
    m32 = load_for_reference(out, torch.float32, with_bias)
    m16 = load_for_reference(out, torch.bfloat16, with_bias)
    cases = []
    with torch.no_grad():
        for prompt, response in PAIRS:
            text = TEMPLATE.format(prompt=prompt, response=response)
            enc = hf_tok(text, return_tensors="pt")
            ids = enc["input_ids"]
            cases.append(
                {
                    "prompt": prompt,
                    "response": response,
                    "input_ids": ids[0].tolist(),
                    "logits_f32": m32(**enc).logits[0].float().tolist(),
                    "logits_bf16": m16(**enc).logits[0].float().tolist(),
                }
            )
        # Right-padded batch through transformers, to show that padding does not change results.
        texts = [TEMPLATE.format(prompt=p, response=r) for p, r in PAIRS]
        enc = hf_tok(texts, return_tensors="pt", padding=True)
        batch_logits = m32(**enc).logits.float().tolist()
        truncated = []
        for prompt, response in PAIRS:
            text = TEMPLATE.format(prompt=prompt, response=response)
            full = hf_tok(text)["input_ids"]
            enc = hf_tok(text, truncation=True, max_length=TRUNCATION_MAX_TOKENS, return_tensors="pt")
            truncated.append(
                {
                    "prompt": prompt,
                    "response": response,
                    "truncated": len(full) > TRUNCATION_MAX_TOKENS,
                    "input_ids": enc["input_ids"][0].tolist(),
                    "logits_f32": m32(**enc).logits[0].float().tolist(),
                }
            )
    return {
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "template": TEMPLATE,
        "cases": cases,
        "batch_logits_f32": batch_logits,
        "truncation_max_tokens": TRUNCATION_MAX_TOKENS,
        "truncated_cases": truncated,
    }


def v4_dialect(cfg_path: Path) -> dict:
    """The same config as transformers 4.x wrote it: top-level rope_theta, torch_dtype."""
    cfg = json.loads(cfg_path.read_text())
    rp = cfg.pop("rope_parameters", None) or {}
    cfg["rope_theta"] = rp.get("rope_theta", cfg.get("rope_theta"))
    if "dtype" in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    cfg["transformers_version"] = "4.38.2"
    return cfg


def write_model_dir(name: str, out: Path, cfg, seed: int, shard: str | None, tok_dir: Path,
                    score_std: float, score_bias: float | None = None, labels: list[str] | None = None):
    if labels is not None:
        cfg.id2label = {i: l for i, l in enumerate(labels)}
        cfg.label2id = {l: i for i, l in enumerate(labels)}
    model = build_model(cfg, seed, score_std, score_bias)
    save_model(model, out, shard)
    if cfg.architectures and cfg.architectures[0] != "MistralForSequenceClassification":
        # Mimic the hub checkpoint, which names its own subclass (never executed by the port).
        written = json.loads((out / "config.json").read_text())
        written["architectures"] = cfg.architectures
        written["auto_map"] = {"AutoModelForSequenceClassification": "modeling_custom.MistralForAttributePrediction"}
        (out / "config.json").write_text(json.dumps(written, indent=2) + "\n")
    shutil.copy(tok_dir / "tokenizer.json", out / "tokenizer.json")
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=2) + "\n")
    (out / "config.v4.json").write_text(json.dumps(v4_dialect(out / "config.json"), indent=2) + "\n")
    ref = reference(out, tok_dir, with_bias=score_bias is not None)
    (out / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    print(f"{name}: {sum(f.stat().st_size for f in out.iterdir())/1e6:.1f} MB", file=sys.stderr)


def main() -> None:
    model_file = spm_model_path()
    tok = build_tokenizer(model_file)
    check_tokenizer(tok, model_file)
    tok_dir = ROOT / "assets" / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(tok_dir / "tokenizer.json"))

    fixtures = ROOT / "tests" / "fixtures"
    fixtures.mkdir(parents=True, exist_ok=True)

    mha = make_config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, sliding_window=None)
    write_model_dir("tiny-mha", fixtures / "tiny-mha", mha, seed=1, shard="1MB", tok_dir=tok_dir,
                    score_std=4.0)

    # The same weights as a PyTorch pickle, for checkpoints that ship only pytorch_model.bin.
    from safetensors.torch import load_file

    bin_dir = fixtures / "tiny-mha-bin"
    if bin_dir.exists():
        shutil.rmtree(bin_dir)
    bin_dir.mkdir()
    state = {}
    for f in sorted((fixtures / "tiny-mha").glob("*.safetensors")):
        state.update(load_file(f))
    torch.save(state, bin_dir / "pytorch_model.bin")
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(fixtures / "tiny-mha" / name, bin_dir / name)

    gqa = make_config(hidden_size=32, intermediate_size=80, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=16, sliding_window=24)
    write_model_dir("tiny-gqa-window", fixtures / "tiny-gqa-window", gqa, seed=2, shard="1MB",
                    tok_dir=tok_dir, score_std=4.0)

    demo = make_config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, sliding_window=None, architectures=["MistralForAttributePrediction"])
    write_model_dir("demo", ROOT / "assets" / "demo", demo, seed=3, shard=None, tok_dir=tok_dir,
                    score_std=2.5, score_bias=50.0, labels=DPA_LABELS)
    # The demo model needs no 4.x copy nor tokenizer_config.
    (ROOT / "assets" / "demo" / "config.v4.json").unlink()


if __name__ == "__main__":
    main()
