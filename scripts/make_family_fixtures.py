#!/usr/bin/env python3
"""Build tiny reference fixtures for the reward-model families beyond Mistral.

Outputs (each directory: config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
reference.json; weights stored as bf16, every reference number computed in float32 from the bf16
weights read back from disk, eager attention):

  tests/fixtures/tiny-armo/        ArmoRM (RLHFlow/ArmoRM-Llama3-8B-v0.1, LlamaForRewardModelWithGating):
                                   Llama backbone (GQA, llama3 rope scaling) + 19-objective regression
                                   layer + prompt-conditioned gating MLP + reward transform matrix.
                                   Real Llama 3 tokenizer (tiktoken file from the llama-models package)
                                   with ArmoRM's extra [PAD] (id 128256), Llama 3 Instruct chat template.
  tests/fixtures/tiny-llama-cls/   LlamaForSequenceClassification, 3 named labels, llama3 rope scaling,
                                   explicit head_dim, Llama 3.1 Instruct tokenizer (BOS post-processor)
                                   and chat template, pad <|finetune_right_pad_id|>.
  tests/fixtures/tiny-qwen2-cls/   Qwen2ForSequenceClassification, 1 label, nonzero q/k/v biases, no
                                   sliding window; Mistral's SentencePiece tokenizer + ChatML tokens
                                   added (<|endoftext|> is the pad), Qwen2 Instruct chat template.
  tests/fixtures/tiny-gemma2-cls/  Gemma2ForSequenceClassification, 2 labels, attention logit
                                   soft-capping, query_pre_attn_scalar != head_dim, alternating sliding
                                   window shorter than most inputs, pre/post feed-forward norms,
                                   sqrt(hidden) embedding scale; Mistral tokenizer + Gemma turn tokens,
                                   Gemma 2 chat template.

reference.json holds, per case, the prompt/response, the exact text and ids of
tokenizer.apply_chat_template([user, assistant]) and the outputs; the same for a right-padded batch of all
cases; and "sensitivity": how much each architecture feature moves the outputs (so that a port that drops
one fails the parity test).

Requirements (only to regenerate): torch, transformers>=5, tokenizers, tiktoken, llama-models (for the
Llama 3 tokenizer.model), mistral-common and sentencepiece (for the Mistral tokenizer, built exactly as
scripts/make_fixtures.py builds it), safetensors.  Deterministic (fixed seeds, one CPU thread): running it
twice writes identical files.  Run from the repository root:  python3 scripts/make_family_fixtures.py
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, Tokenizer, processors

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (the Mistral tokenizer, rebuilt from SentencePiece)

torch.set_num_threads(1)

LONG_RESPONSE = (
    "Here is a longer answer that runs well past the sliding window of the small test model. "
    "It lists several points:\n1. First, be clear.\n2. Second, be correct.\n3. Third, be brief "
    "when brevity helps the reader, and thorough when the question calls for depth.\n"
    "Finally, it ends with a short summary so that the last tokens see only a window of the text."
)
CASES = [
    (mf.SEED_PROMPT, mf.SEED_RESPONSE),  # the ArmoRM model card's example
    ("Explain gravity in one sentence.", "Mass bends spacetime, and objects follow that curvature."),
    ("日本の首都はどこですか？", "東京です。🗼 It is Tokyo — « café » ✨"),
    ("Write a long answer.", LONG_RESPONSE),
    ("Hi", "Hello!"),
    ("  leading and trailing spaces  ", "\n  indented answer\n\n"),  # Llama/Gemma templates trim content
    ("A prompt with an empty answer.", ""),
]


def messages(prompt: str, response: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


# ---------------------------------------------------------------------------------------------
# Chat templates, verbatim from the hub tokenizer_config.json files named.
# ---------------------------------------------------------------------------------------------
# meta-llama/Meta-Llama-3-8B-Instruct (the one RLHFlow/ArmoRM-Llama3-8B-v0.1 ships).
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# meta-llama/Llama-3.1-8B-Instruct.
LLAMA31_TEMPLATE = r'''{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
'''
# Qwen/Qwen2-7B-Instruct (ChatML; content is not trimmed).
QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# google/gemma-2-9b-it.
GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

# ---------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------
# The 256 special tokens after the 128000 BPE ranks, as the hub tokenizer.json files name them.
LLAMA30_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_4|>", "<|eot_id|>",
] + [f"<|reserved_special_token_{i}|>" for i in range(5, 251)]
LLAMA31_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
] + [f"<|reserved_special_token_{i}|>" for i in range(3, 248)]
assert len(LLAMA30_SPECIALS) == len(LLAMA31_SPECIALS) == 256

# ArmoRM's gating position: "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n".
ARMO_TOKEN_PATTERN = [128009, 128006, 78191, 128007, 271]
ARMO_LABELS = [  # the model card's `attributes`, in head order
    "helpsteer-helpfulness", "helpsteer-correctness", "helpsteer-coherence", "helpsteer-complexity",
    "helpsteer-verbosity", "ultrafeedback-overall_score", "ultrafeedback-instruction_following",
    "ultrafeedback-truthfulness", "ultrafeedback-honesty", "ultrafeedback-helpfulness", "beavertails-is_safe",
    "prometheus-score", "argilla-overall_quality", "argilla-judge_lm", "code-complexity", "code-style",
    "code-explanation", "code-instruction-following", "code-readability",
]


def llama3_model_path() -> Path:
    import llama_models

    return Path(llama_models.__file__).parent / "llama3" / "tokenizer.model"


def llama3_tokenizer(specials: list[str], extra: list[str], bos_post_processor: bool) -> Tokenizer:
    """The hub's Llama 3 tokenizer.json, converted from Meta's tiktoken file as transformers does."""
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tok = TikTokenConverter(vocab_file=str(llama3_model_path())).converted()
    assert tok.get_vocab_size() == 128000
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials + extra])
    if bos_post_processor:
        # Meta's current Llama 3.x tokenizer.json: ByteLevel, then a template that prepends BOS.
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                special_tokens=[("<|begin_of_text|>", 128000)],
            ),
        ])
    # Otherwise the converter's plain ByteLevel post-processor: what ArmoRM's tokenizer.json has
    # (it predates Meta's BOS template processor), so encoding a text adds no BOS.
    for text in [p for c in CASES for p in c]:
        ours = tok.encode(text, add_special_tokens=False).ids
        assert ours == tiktoken_encode(text), text
    assert tok.encode("assistant", add_special_tokens=False).ids == [78191]
    assert tok.encode("\n\n", add_special_tokens=False).ids == [271]
    return tok


def tiktoken_encode(text: str, specials: list[str] | None = None) -> list[int]:
    """Meta's own tokenizer (tiktoken, Meta's split pattern) on `text`, to check the conversion; with
    `specials`, those strings are special tokens 128000.. and are recognised in the text."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from llama_models.llama3.tokenizer import Tokenizer as MetaTokenizer

    enc = tiktoken.Encoding(
        name="llama3", pat_str=MetaTokenizer.pat_str,
        mergeable_ranks=load_tiktoken_bpe(str(llama3_model_path())),
        special_tokens={t: 128000 + i for i, t in enumerate(specials or [])},
    )
    return enc.encode(text, allowed_special="all" if specials else set(), disallowed_special=())


def mistral_tokenizer(extra: list[str]) -> Tokenizer:
    """assets/tokenizer/tokenizer.json (Mistral 7B v0.1 + [PAD] = 32000) plus `extra` added tokens."""
    model_file = mf.spm_model_path()
    tok = mf.build_tokenizer(model_file)
    mf.check_tokenizer(tok, model_file)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in extra])
    return tok


def write_tokenizer(tok: Tokenizer, out: Path, config: dict) -> None:
    tok.save(str(out / "tokenizer.json"), pretty=False)  # compact: the Llama 3 file is 7 MB, not 17
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def load_hf_tokenizer(out: Path):
    # tokenizer.json's own pipeline, as the fixture declares (tokenizer_class
    # PreTrainedTokenizerFast). AutoTokenizer would pick the tokenizer class of the config's
    # model_type instead (transformers 5 rebuilds e.g. Qwen2's pre-tokenizer around the
    # vocabulary), which for a Qwen2 body with Mistral's vocabulary is neither tokenizer.
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(out)


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------
def randomize(model: nn.Module, seed: int, std: float, norm: str, head_std: dict[str, float] | None = None,
              bias_std: float = 0.1) -> None:
    """Every parameter gets a seeded non-trivial value (no zeros, no all-ones norms)."""
    gen = torch.Generator().manual_seed(seed)
    head_std = head_std or {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("norm.weight"):
                # Llama/Qwen RMSNorm multiplies by w (init 1); Gemma multiplies by (1 + w) (init 0).
                p.copy_((1.0 if norm == "ones" else 0.0) + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(bias_std * noise)
            else:
                s = next((v for k, v in head_std.items() if name.startswith(k)), std)
                p.copy_(s * noise)


def bf16_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}


def max_diff(a, b) -> float:
    return float((torch.as_tensor(a, dtype=torch.float64) - torch.as_tensor(b, dtype=torch.float64)).abs().max())


def min_pairwise_gap(values: list[float]) -> float:
    v = sorted(values)
    return min(b - a for a, b in zip(v, v[1:]))


def pad_right(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def encode_cases(tok) -> list[dict]:
    """text and ids exactly as apply_chat_template gives them (transformers 5 tokenizes the rendered text
    with add_special_tokens=False, so BOS comes only from the template)."""
    out = []
    for prompt, response in CASES:
        text = tok.apply_chat_template(messages(prompt, response), tokenize=False)
        ids = tok.apply_chat_template(messages(prompt, response), tokenize=True)["input_ids"]
        assert ids == tok(text, add_special_tokens=False)["input_ids"]
        out.append({
            "prompt": prompt,
            "response": response,
            "text": text,
            "input_ids": ids,
            # What a plain encode of the text with the tokenizer's default special-token handling gives
            # (a second BOS where the tokenizer.json post-processor adds one).
            "input_ids_encode_default": tok(text)["input_ids"],
        })
    return out


def common_header() -> dict:
    import transformers

    return {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "compute_dtype": "float32",
        "weights_dtype": "bfloat16",
        "attn_implementation": "eager",
        "messages": "[{role: user, content: prompt}, {role: assistant, content: response}]",
        "apply_chat_template": "tokenize=False for text; tokenize=True for input_ids (add_special_tokens=False); "
                               "add_generation_prompt=False",
    }


def dump(out: Path, ref: dict) -> None:
    (out / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    total = sum(f.stat().st_size for f in out.iterdir())
    print(f"{out.name}: {total / 1e6:.2f} MB", file=sys.stderr)


def fresh_dir(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


# ---------------------------------------------------------------------------------------------
# ArmoRM
# ---------------------------------------------------------------------------------------------
# An independent re-implementation of the forward pass of RLHFlow/ArmoRM-Llama3-8B-v0.1's
# modeling_custom.py (class LlamaForRewardModelWithGating, GatingNetwork, find_token_for_gating; the same
# code as RLHFlow/RLHF-Reward-Modeling armo-rm/stage-2_prepare.py + stage-2_train.py at inference):
#   H        = LlamaModel(input_ids, attention_mask).last_hidden_state   (after the final RMSNorm)
#   r_pos    = (index of the FIRST pad_token_id in the row) - 1, modulo seq_len  (no pad -> last token)
#   rewards  = regression_layer(H[r_pos])                 Linear(hidden, num_objectives, bias=False)
#   g_pos    = start index j of the LAST occurrence of ARMO_TOKEN_PATTERN in the row's ids
#              (j scanned from len-5 down to 0; none -> ValueError("Token pattern not found in the list."))
#   x        = H[g_pos]   (the hidden state of the <|eot_id|> that closes the user turn)
#   x        = relu(gating.layers.i(x)) for i < n_hidden; x = gating.layers.n_hidden(x)  (all with bias)
#   gating   = softmax(x / gating_temperature, dim=-1) * gating.logit_scale[0]
#   transformed = rewards @ reward_transform_matrix       (row vector times [19, 19] matrix)
#   score    = sum(gating * transformed, dim=-1)          (no offset, no scale)
# No dropout at inference (the hub file has none; stage-2 training's dropout is training-only).
class ArmoGating(nn.Module):
    def __init__(self, in_features: int, out_features: int, temperature: float, hidden_dim: int, n_hidden: int):
        super().__init__()
        self.temperature = temperature
        self.logit_scale = nn.Parameter(torch.ones(1))
        dims = [in_features] + [hidden_dim] * n_hidden
        layers = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
        layers.append(nn.Linear(dims[-1], out_features, bias=True))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return F.softmax(x / self.temperature, dim=-1) * self.logit_scale[0]


def find_gating_position(ids: list[int]) -> int:
    n = len(ARMO_TOKEN_PATTERN)
    for j in range(len(ids) - n, -1, -1):
        if ids[j: j + n] == ARMO_TOKEN_PATTERN:
            return j
    raise ValueError("Token pattern not found in the list.")


class ArmoReference(nn.Module):
    def __init__(self, config):
        from transformers import LlamaModel

        super().__init__()
        self.config = config
        d = config.to_dict()
        self.num_objectives = d.get("num_objectives", 19)
        self.model = LlamaModel(config)
        self.regression_layer = nn.Linear(config.hidden_size, self.num_objectives, bias=False)
        self.reward_transform_matrix = nn.Parameter(torch.eye(self.num_objectives))
        self.gating = ArmoGating(config.hidden_size, self.num_objectives, d.get("gating_temperature", 10),
                                 d.get("gating_hidden_dim", 1024), d.get("gating_n_hidden", 3))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> dict:
        h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        batch, seq = input_ids.shape
        rows = torch.arange(batch)
        reward_pos = (torch.eq(input_ids, self.config.pad_token_id).int().argmax(-1) - 1) % seq
        rewards = self.regression_layer(h[rows, reward_pos])
        gate_pos = [find_gating_position(r.tolist()) for r in input_ids]
        gating = self.gating(h[rows, gate_pos])
        transformed = rewards @ self.reward_transform_matrix
        score = torch.sum(gating * transformed, dim=1)
        return {"rewards": rewards, "gating": gating, "transformed": transformed, "score": score,
                "coefficients": gating @ self.reward_transform_matrix.T,
                "reward_position": reward_pos.tolist(), "gating_position": gate_pos}


def armo_config() -> dict:
    # The keys of the hub config.json (transformers 4.x dialect: rope_theta/rope_scaling/torch_dtype at the
    # top level), sizes shrunk. Its id2label is the single-label default; the 19 names live only in the
    # model card (reference.json "labels").
    return {
        "architectures": ["LlamaForRewardModelWithGating"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "auto_map": {"AutoModelForSequenceClassification": "modeling_custom.LlamaForRewardModelWithGating"},
        "bos_token_id": 128000,
        "eos_token_id": 128009,
        "gating_hidden_dim": 24,
        "gating_n_hidden": 3,
        "gating_temperature": 2.5,
        "hidden_act": "silu",
        "hidden_size": 32,
        "id2label": {"0": "LABEL_0"},
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "label2id": {"LABEL_0": 0},
        "max_position_embeddings": 131072,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "num_objectives": 19,
        "pad_token_id": 128256,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 8.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": 128257,
    }


def load_armo(out: Path, **overrides) -> ArmoReference:
    from transformers import LlamaConfig

    cfg = LlamaConfig.from_pretrained(out)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    cfg._attn_implementation = "eager"
    model = ArmoReference(cfg)
    sd = {k: v.float() for k, v in load_file(out / "model.safetensors").items()}
    model.load_state_dict(sd, strict=True)
    return model.eval()


def make_armo() -> None:
    out = FIXTURES / "tiny-armo"
    fresh_dir(out)
    tok = llama3_tokenizer(LLAMA30_SPECIALS, ["[PAD]"], bos_post_processor=False)
    assert tok.token_to_id("[PAD]") == 128256
    write_tokenizer(tok, out, {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "pad_token": "[PAD]",
        "chat_template": LLAMA3_TEMPLATE,
        "clean_up_tokenization_spaces": True,
        "model_input_names": ["input_ids", "attention_mask"],
        "padding_side": "right",
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    (out / "config.json").write_text(json.dumps(armo_config(), indent=2) + "\n")

    from transformers import LlamaConfig

    cfg = LlamaConfig.from_pretrained(out)
    torch.manual_seed(11)
    model = ArmoReference(cfg)
    randomize(model, seed=11, std=0.15, norm="ones",
              head_std={"regression_layer": 0.3, "gating.layers": 0.35}, bias_std=0.3)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(12)
        n = model.num_objectives
        # Like the real matrix (identity with the verbosity row debiased), plus small asymmetric noise so
        # that a transposed matrix gives a different score.
        t = torch.eye(n) + 0.05 * torch.randn(n, n, generator=gen)
        t[4, :] -= 0.1 + 0.3 * torch.rand(n, generator=gen)
        model.reward_transform_matrix.copy_(t)
        model.gating.logit_scale.fill_(1.7)
    save_file(bf16_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)

    model = load_armo(out)
    hf_tok = load_hf_tokenizer(out)
    cases = encode_cases(hf_tok)
    with torch.no_grad():
        for c in cases:
            assert c["input_ids"].count(128000) == 1 and c["input_ids"][0] == 128000
            assert c["input_ids_encode_default"] == c["input_ids"]  # no BOS post-processor here
            assert tiktoken_encode(c["text"], LLAMA30_SPECIALS) == c["input_ids"]
            r = model(torch.tensor([c["input_ids"]]))
            for k in ("rewards", "gating", "transformed", "coefficients"):
                c[k] = r[k][0].tolist()
            c["score"] = float(r["score"][0])
            c["reward_position"] = r["reward_position"][0]
            c["gating_position"] = r["gating_position"][0]
            assert abs(sum(x * y for x, y in zip(c["rewards"], c["coefficients"])) - c["score"]) < 1e-4
        ids, mask = pad_right([c["input_ids"] for c in cases], cfg.pad_token_id)
        b = model(ids, attention_mask=mask)
        batch = {
            "padding_side": "right",
            "pad_id": cfg.pad_token_id,
            "input_ids": ids.tolist(),
            "attention_mask": mask.tolist(),
            "rewards": b["rewards"].tolist(),
            "gating": b["gating"].tolist(),
            "transformed": b["transformed"].tolist(),
            "score": b["score"].tolist(),
            "reward_position": b["reward_position"],
            "gating_position": b["gating_position"],
        }
        batch_diff = max(max_diff(b["rewards"], [c["rewards"] for c in cases]),
                         max_diff(b["gating"], [c["gating"] for c in cases]),
                         max_diff(b["score"], [c["score"] for c in cases]))
        assert batch_diff < 1e-4, batch_diff

        # A sequence without the assistant header pattern: the reference raises.
        plain = "Plain text with no chat template, so no assistant header."
        plain_ids = hf_tok(plain, add_special_tokens=False)["input_ids"]
        plain_ids = [128000] + plain_ids + [128009]
        try:
            model(torch.tensor([plain_ids]))
            raise AssertionError("expected the pattern search to fail")
        except ValueError as e:
            no_pattern = {"text": plain, "input_ids": plain_ids, "raises": "ValueError", "message": str(e)}

        scores = [c["score"] for c in cases]
        sens = {
            "min_gap_between_case_scores": min_pairwise_gap(scores),
            "score_max_abs_diff_rope_default_instead_of_llama3": max_diff(
                [float(load_armo(out, rope_parameters={"rope_type": "default", "rope_theta": 500000.0})(torch.tensor([c["input_ids"]]))["score"][0]) for c in cases],
                scores),
            "score_max_abs_diff_transform_transposed": max_diff(
                [sum(g * t for g, t in zip(c["gating"], (torch.tensor([c["rewards"]]) @ model.reward_transform_matrix.T)[0].tolist()))
                 for c in cases], scores),
            "score_max_abs_diff_gating_at_last_token": max_diff(
                [float((model.gating(model.model(input_ids=torch.tensor([c["input_ids"]])).last_hidden_state[0, -1:])[0]
                        * torch.tensor(c["transformed"])).sum()) for c in cases], scores),
            "gating_min_max": [min(min(c["gating"]) for c in cases), max(max(c["gating"]) for c in cases)],
        }
    assert sens["min_gap_between_case_scores"] > 1e-3, sens
    assert sens["score_max_abs_diff_rope_default_instead_of_llama3"] > 1e-3, sens
    assert sens["gating_min_max"][1] < 0.5 * 1.7, sens  # the gate mixes objectives, it is not one-hot

    ref = common_header()
    ref.update({
        "architecture": "LlamaForRewardModelWithGating",
        "source": "RLHFlow/ArmoRM-Llama3-8B-v0.1 modeling_custom.py (re-implemented, see make_family_fixtures.py)",
        "chat_template": LLAMA3_TEMPLATE,
        "text_encode_adds_bos": False,
        "bos_id": 128000,
        "pad_token": "[PAD]",
        "pad_id": cfg.pad_token_id,
        "labels": ARMO_LABELS,
        "token_pattern": ARMO_TOKEN_PATTERN,
        "token_pattern_text": "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "gating_position": "start index of the LAST occurrence of token_pattern (its <|eot_id|>)",
        "reward_position": "(index of the first pad_id in the row) - 1, modulo the row length (no pad: last token)",
        "formula": {
            "hidden": "LlamaModel last_hidden_state (after the final norm) for both heads",
            "rewards": "regression_layer.weight @ H[reward_position]  (no bias)",
            "gating": "softmax(MLP(H[gating_position]) / gating_temperature) * gating.logit_scale[0]; "
                      "MLP = layers.0..n_hidden-1 Linear+ReLU, then layers.n_hidden Linear; all with bias",
            "transformed": "rewards @ reward_transform_matrix  (row vector times matrix)",
            "coefficients": "gating @ reward_transform_matrix^T (the model card's multi_obj_coeffs)",
            "score": "sum(gating * transformed) == sum(rewards * coefficients)",
        },
        "cases": cases,
        "batch": batch,
        "batch_vs_single_max_abs_diff": batch_diff,
        "no_pattern_case": no_pattern,
        "sensitivity": sens,
    })
    dump(out, ref)


# ---------------------------------------------------------------------------------------------
# Sequence classifiers (transformers' own classes)
# ---------------------------------------------------------------------------------------------
def cls_reference(out: Path, cls, tok, pad_id: int, extra: dict, sensitivity) -> None:
    model = cls.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    cases = encode_cases(tok)
    with torch.no_grad():
        for c in cases:
            c["logits"] = model(input_ids=torch.tensor([c["input_ids"]])).logits[0].tolist()
        ids, mask = pad_right([c["input_ids"] for c in cases], pad_id)
        logits = model(input_ids=ids, attention_mask=mask).logits.tolist()
        batch_diff = max_diff(logits, [c["logits"] for c in cases])
        assert batch_diff < 1e-4, batch_diff
        flat = [c["logits"][0] for c in cases]
        sens = {"min_gap_between_case_logit0": min_pairwise_gap(flat)}
        sens.update(sensitivity(model, cases))
    assert sens["min_gap_between_case_logit0"] > 1e-3, sens
    for k, v in sens.items():
        if k.startswith("logits_max_abs_diff"):
            assert v > 1e-3, (k, v)
    cfg = json.loads((out / "config.json").read_text())
    ref = common_header()
    ref.update(extra)
    ref.update({
        "architecture": cfg["architectures"][0],
        "labels": [model.config.id2label[i] for i in range(model.config.num_labels)],
        "config_json_has_id2label": "id2label" in cfg,
        "pad_token": tok.pad_token,
        "pad_id": pad_id,
        "pooling": "logits at the rightmost position whose id != pad_token_id (transformers "
                   "GenericForSequenceClassification)",
        "cases": cases,
        "batch": {"padding_side": "right", "pad_id": pad_id, "input_ids": ids.tolist(),
                  "attention_mask": mask.tolist(), "logits": logits},
        "batch_vs_single_max_abs_diff": batch_diff,
        "sensitivity": sens,
    })
    dump(out, ref)


def variant_logits(out: Path, cls, cases, mutate=None, **overrides) -> list[list[float]]:
    m = cls.from_pretrained(out, dtype=torch.float32, attn_implementation="eager", **overrides).eval()
    if mutate:
        mutate(m)
    with torch.no_grad():
        return [m(input_ids=torch.tensor([c["input_ids"]])).logits[0].tolist() for c in cases]


def save_cls(model, out: Path) -> None:
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    for f in out.iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            f.unlink()
    (out / "model.safetensors").chmod(0o644)


def make_llama_cls() -> None:
    from transformers import LlamaConfig, LlamaForSequenceClassification

    out = FIXTURES / "tiny-llama-cls"
    fresh_dir(out)
    tok = llama3_tokenizer(LLAMA31_SPECIALS, [], bos_post_processor=True)
    pad_id = tok.token_to_id("<|finetune_right_pad_id|>")
    assert pad_id == 128004
    labels = ["safety", "helpfulness", "style"]
    cfg = LlamaConfig(
        vocab_size=128256, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=131072, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        bos_token_id=128000, eos_token_id=[128001, 128008, 128009], pad_token_id=pad_id,
        tie_word_embeddings=False, initializer_range=0.15, num_labels=3,
        id2label={i: l for i, l in enumerate(labels)}, label2id={l: i for i, l in enumerate(labels)},
    )
    torch.manual_seed(21)
    model = LlamaForSequenceClassification(cfg)
    randomize(model, seed=21, std=0.15, norm="ones", head_std={"score": 2.0})
    save_cls(model, out)
    write_tokenizer(tok, out, {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "pad_token": "<|finetune_right_pad_id|>",
        "chat_template": LLAMA31_TEMPLATE,
        "clean_up_tokenization_spaces": True,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "padding_side": "right",
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    hf_tok = load_hf_tokenizer(out)

    def sensitivity(model, cases):
        base = [c["logits"] for c in cases]
        return {"logits_max_abs_diff_rope_default_instead_of_llama3": max_diff(variant_logits(
            out, LlamaForSequenceClassification, cases,
            rope_parameters={"rope_type": "default", "rope_theta": 500000.0}), base)}

    probe = encode_cases(hf_tok)
    for c in probe:
        assert c["input_ids"].count(128000) == 1 and c["input_ids_encode_default"][:2] == [128000, 128000]
        assert tiktoken_encode(c["text"], LLAMA31_SPECIALS) == c["input_ids"]
    cls_reference(out, LlamaForSequenceClassification, hf_tok, pad_id, {
        "chat_template": LLAMA31_TEMPLATE,
        "text_encode_adds_bos": True,
        "bos_id": 128000,
    }, sensitivity)


def make_qwen2_cls() -> None:
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    out = FIXTURES / "tiny-qwen2-cls"
    fresh_dir(out)
    tok = mistral_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    pad_id = tok.token_to_id("<|endoftext|>")
    assert (pad_id, tok.token_to_id("<|im_end|>"), tok.get_vocab_size()) == (32001, 32003, 32004)
    cfg = Qwen2Config(
        vocab_size=32004, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        use_sliding_window=False, sliding_window=None,
        bos_token_id=None, eos_token_id=32003, pad_token_id=pad_id, tie_word_embeddings=False,
        initializer_range=0.15, num_labels=1,
    )
    torch.manual_seed(31)
    model = Qwen2ForSequenceClassification(cfg)
    randomize(model, seed=31, std=0.15, norm="ones", head_std={"score": 3.0}, bias_std=0.5)
    save_cls(model, out)
    write_tokenizer(tok, out, {
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": "<unk>",
        "chat_template": QWEN2_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 32768,
        "padding_side": "right",
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    hf_tok = load_hf_tokenizer(out)

    def zero_qkv_bias(m):
        with torch.no_grad():
            for name, p in m.named_parameters():
                if name.endswith(".bias"):
                    p.zero_()

    def sensitivity(model, cases):
        base = [c["logits"] for c in cases]
        return {"logits_max_abs_diff_without_qkv_bias": max_diff(
            variant_logits(out, Qwen2ForSequenceClassification, cases, mutate=zero_qkv_bias), base)}

    cls_reference(out, Qwen2ForSequenceClassification, hf_tok, pad_id, {
        "chat_template": QWEN2_TEMPLATE,
        "text_encode_adds_bos": True,  # the Mistral tokenizer.json post-processor prepends <s>
        "bos_id": 1,
        "tokenizer_note": "Mistral 7B v0.1 SentencePiece tokenizer (+[PAD]=32000, unused here) with the ChatML "
                          "tokens added as specials: <|endoftext|>=32001 (pad), <|im_start|>=32002, "
                          "<|im_end|>=32003. The template has no BOS and apply_chat_template adds none.",
    }, sensitivity)


def make_gemma2_cls() -> None:
    from transformers import Gemma2Config, Gemma2ForSequenceClassification

    out = FIXTURES / "tiny-gemma2-cls"
    fresh_dir(out)
    tok = mistral_tokenizer(["<start_of_turn>", "<end_of_turn>"])
    assert (tok.token_to_id("<start_of_turn>"), tok.token_to_id("<end_of_turn>")) == (32001, 32002)
    pad_id = 32000  # [PAD]
    cfg = Gemma2Config(
        vocab_size=32003, hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24, hidden_activation="gelu_pytorch_tanh",
        max_position_embeddings=8192, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        sliding_window=16, layer_types=["sliding_attention", "full_attention"],
        attn_logit_softcapping=5.0, final_logit_softcapping=30.0,
        bos_token_id=1, eos_token_id=2, pad_token_id=pad_id, tie_word_embeddings=True,
        initializer_range=0.15, num_labels=2,
    )
    torch.manual_seed(41)
    model = Gemma2ForSequenceClassification(cfg)
    randomize(model, seed=41, std=0.15, norm="offset",
              head_std={"score": 1.0, "model.layers.0.self_attn.q_proj": 0.5, "model.layers.0.self_attn.k_proj": 0.5,
                        "model.layers.1.self_attn.q_proj": 0.5, "model.layers.1.self_attn.k_proj": 0.5})
    save_cls(model, out)
    write_tokenizer(tok, out, {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "[PAD]",
        "unk_token": "<unk>",
        "chat_template": GEMMA2_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 8192,
        "padding_side": "right",
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    hf_tok = load_hf_tokenizer(out)

    def sensitivity(model, cases):
        base = [c["logits"] for c in cases]
        g = Gemma2ForSequenceClassification
        d = {
            "logits_max_abs_diff_without_attn_softcapping": max_diff(
                variant_logits(out, g, cases, attn_logit_softcapping=None), base),
            "logits_max_abs_diff_without_sliding_window": max_diff(
                variant_logits(out, g, cases, layer_types=["full_attention", "full_attention"]), base),
            "logits_max_abs_diff_query_pre_attn_scalar_eq_head_dim": max_diff(
                variant_logits(out, g, cases, query_pre_attn_scalar=16), base),
            "logits_max_abs_diff_sliding_window_off_by_one_17": max_diff(
                variant_logits(out, g, cases, sliding_window=17), base),
            "logits_max_abs_diff_final_softcap_applied_to_head": max_diff(
                [[30.0 * float(torch.tanh(torch.tensor(x / 30.0))) for x in c["logits"]] for c in cases], base),
        }
        lengths = [len(c["input_ids"]) for c in cases]
        d["case_lengths"] = lengths
        return d

    cls_reference(out, Gemma2ForSequenceClassification, hf_tok, pad_id, {
        "chat_template": GEMMA2_TEMPLATE,
        "text_encode_adds_bos": True,  # the Mistral tokenizer.json post-processor prepends <s>
        "bos_id": 1,
        "final_logit_softcapping_applied_to_classifier": False,
        "tokenizer_note": "Mistral 7B v0.1 SentencePiece tokenizer (+[PAD]=32000, the pad) with the Gemma turn "
                          "tokens added as specials: <start_of_turn>=32001, <end_of_turn>=32002.",
    }, sensitivity)


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    make_armo()
    make_llama_cls()
    make_qwen2_cls()
    make_gemma2_cls()


if __name__ == "__main__":
    main()
