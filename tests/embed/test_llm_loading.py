"""A large LLM loads in bf16 without a float32 copy in host memory: the peak resident set grows by about the bf16
weights (transformers reads safetensors straight into the requested dtype), where a float32 load grows by twice that
or more. Measured in a subprocess on a random ~320 M-parameter Llama saved in bf16, as a 12 B model would be."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fixtures import HUNG_AFTER_S

SCRIPT = Path(__file__).with_name("load_peak_rss.py")


@pytest.fixture(scope="module")
def bf16_llm(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    from pipeline.demo.tiny_llm import train_tokenizer

    out = tmp_path_factory.mktemp("bf16-llm")
    config = LlamaConfig(vocab_size=32000, hidden_size=1024, intermediate_size=4096, num_hidden_layers=16,
                         num_attention_heads=16, num_key_value_heads=8, tie_word_embeddings=False)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in bf16: no float32 copy here either
    try:
        LlamaForCausalLM(config).save_pretrained(out)
    finally:
        torch.set_default_dtype(default)
    train_tokenizer(["a red star and a blue circle"] * 10, vocab_size=300).save_pretrained(out)
    return out


def _load(path: Path, dtype: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(path), dtype], capture_output=True, text=True,
                          timeout=HUNG_AFTER_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fields = dict(word.split("=") for word in proc.stdout.split())
    return {"growth": float(fields["growth_mib"]), "weights": float(fields["weights_mib"]), "dtype": fields["dtype"]}


def test_a_bf16_load_grows_host_memory_by_the_bf16_weights_only(bf16_llm):
    bf16 = _load(bf16_llm, "bfloat16")
    assert bf16["dtype"] == "torch.bfloat16" and 590 < bf16["weights"] < 620  # 317 M parameters x 2 bytes
    assert bf16["growth"] < 1.15 * bf16["weights"], bf16
    # the contrast the bound tells apart: in float32 the same checkpoint takes a copy twice its size
    fp32 = _load(bf16_llm, "float32")
    assert fp32["dtype"] == "torch.float32" and fp32["growth"] > 1.8 * bf16["weights"], fp32
