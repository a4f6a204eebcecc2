#!/usr/bin/env python3
"""Build tests/fixtures/vllm-gqa-window/, the tiny reward model that the vLLM tests serve.

Same recipe, tokenizer, template and reference.json format as scripts/make_fixtures.py (whose
functions this reuses), with the shape vLLM's CPU backend accepts: its attention kernels take
head_dim 32 and up only (a head_dim 16 model such as tiny-gqa-window crashes vLLM's engine).
hidden_size stays 32 (with an explicit head_dim 32) so that the 32001 x hidden embedding keeps the
weights near 2 MB; the sliding window (80) lies inside the range of the reference inputs' lengths
(62..324 tokens), so some are scored within one window and some across several.

Requirements: those of make_fixtures.py.  Run from the repository root:
    python3 scripts/make_vllm_fixture.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in scripts/ by the import below
sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

OUT = mf.ROOT / "tests" / "fixtures" / "vllm-gqa-window"
SLIDING_WINDOW = 80

# Appended to make_fixtures' pairs: an input several windows long that still fits the
# --max-model-len 512 the tests serve with.
EXTRA_PAIRS = [
    ("Write a very long answer.", " ".join([mf.LONG_RESPONSE] * 3)),
]


def main() -> None:
    model_file = mf.spm_model_path()
    tok = mf.build_tokenizer(model_file)
    mf.check_tokenizer(tok, model_file)
    # The fixtures must all tokenize alike; a stale committed tokenizer would make them disagree.
    committed = mf.ROOT / "assets" / "tokenizer" / "tokenizer.json"
    if committed.exists() and Tokenizer.from_file(str(committed)).to_str() != tok.to_str():
        sys.exit("assets/tokenizer/tokenizer.json differs from a fresh build: run make_fixtures.py first")

    cfg = mf.make_config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=32, sliding_window=SLIDING_WINDOW)
    # reference() scores make_fixtures.PAIRS; widen it for this fixture only.
    mf.PAIRS = mf.PAIRS + EXTRA_PAIRS
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = Path(tmp)
        tok.save(str(tok_dir / "tokenizer.json"))
        mf.write_model_dir("vllm-gqa-window", OUT, cfg, seed=4, shard=None, tok_dir=tok_dir, score_std=4.0)
    # Only the transformers 5.x config is needed by vLLM.
    (OUT / "config.v4.json").unlink()


if __name__ == "__main__":
    main()
