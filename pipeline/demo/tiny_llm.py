"""Self-built tiny decoder-only LLMs (Mistral, Llama, Qwen2 architectures) with locally trained tokenizers.

Nothing is downloaded: the tokenizer is a byte-level BPE trained with ``tokenizers`` on a local corpus, the model is
built from a transformers config with seeded random weights. :func:`save_tiny_llm` writes a normal Hugging Face
directory (``config.json``, ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``) that loads with
``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained``: the code path a real LLM takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

ARCHITECTURES = {
    "mistral": (MistralConfig, MistralForCausalLM),
    "llama": (LlamaConfig, LlamaForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
}
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def train_bpe(lines: Iterable[str], vocab_size: int, special_tokens: list[str], unk_token: str | None = None
              ) -> Tokenizer:
    """A byte-level BPE (every byte is a token, so any text encodes) trained on ``lines``; the special tokens get
    the first ids, in order."""
    tok = Tokenizer(models.BPE(unk_token=unk_token))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


def train_tokenizer(lines: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``lines`` that prepends BOS, like Mistral's and Llama's."""
    tok = train_bpe(lines, vocab_size, list(SPECIAL_TOKENS.values()), unk_token=SPECIAL_TOKENS["unk_token"])
    bos = SPECIAL_TOKENS["bos_token"]
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def build_tiny_llm(tokenizer: PreTrainedTokenizerFast, arch: str = "mistral", hidden_size: int = 64,
                   num_layers: int = 4, num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int | None = None,
                   max_positions: int = 2048, seed: int = 0) -> PreTrainedModel:
    """A randomly initialised causal LM of architecture ``arch`` sized for ``tokenizer`` (fp32, eval mode)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    config_cls, model_cls = ARCHITECTURES[arch]
    config = config_cls(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return model_cls(config).eval()


def save_tiny_llm(out: Path, corpus: Path, arch: str = "mistral", vocab_size: int = 2048, seed: int = 0,
                  **model_kwargs) -> Path:
    """Train a tokenizer on ``corpus`` (one text per line), build the model, save both as an HF directory."""
    lines = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{corpus}: the tokenizer corpus is empty")
    tokenizer = train_tokenizer(lines, vocab_size=vocab_size)
    model = build_tiny_llm(tokenizer, arch=arch, seed=seed, **model_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
