"""Self-built tiny MiniCPM-V captioners (transformers' native ``minicpmv4_6`` / ``minicpmv4_7``), random weights.

Nothing is downloaded: the tokenizer is a byte-level BPE trained on a local corpus with the special tokens the
MiniCPM-V processor reads by name (``image_token``, ``slice_start_token`` ...) and a Qwen-style chat template; the
image processor is the model's own (``MiniCPMV4_6ImageProcessor``, 112-px crops of 14-px patches instead of 448); the
model is built from a config (a 2-layer hybrid linear/full-attention text model, a 2-layer vision tower).
:func:`save_tiny_vlm` writes a normal Hugging Face directory that ``AutoProcessor`` and
``AutoModelForImageTextToText`` load: the code path a real MiniCPM-V 4.x checkpoint takes. Captions are gibberish.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.demo.tiny_llm import train_bpe
from pipeline.settings import allowed

ARCHITECTURES = allowed("tiny_vlm", "arch")
#: Tokenizer attribute -> token: the names the MiniCPM-V processor reads (the strings are this project's choice).
MULTIMODAL_TOKENS = {
    "image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
    "image_start_token": "<image>", "image_end_token": "</image>",
    "slice_start_token": "<slice>", "slice_end_token": "</slice>",
    "image_id_start_token": "<image_id>", "image_id_end_token": "</image_id>",
}
CHAT_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{%- for message in messages -%}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<|image_pad|>\\n' }}"
    "{%- elif item['type'] == 'video' -%}{{ '<|video_pad|>\\n' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
PATCH_SIZE = 14  # the image processor's and the vision tower's patch (they must agree)
CROP = 112  # crop side of the image processor (real checkpoints: 448); 8x8 patches -> 4 LLM tokens per crop


def _require_arch(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown captioner architecture {arch!r}; known: {ARCHITECTURES}")


def build_processor(arch: str, lines: list[str], vocab_size: int = 512):
    """The MiniCPM-V processor of ``arch`` with a tokenizer trained on ``lines``."""
    _require_arch(arch)
    from transformers import MiniCPMV4_6ImageProcessor, MiniCPMV4_6VideoProcessor, PreTrainedTokenizerFast
    from transformers.models.minicpmv4_6 import MiniCPMV4_6Processor
    from transformers.models.minicpmv4_7 import MiniCPMV4_7Processor

    bpe = train_bpe(lines, vocab_size, [*CHAT_TOKENS, *MULTIMODAL_TOKENS.values()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        extra_special_tokens=dict(MULTIMODAL_TOKENS), padding_side="left",
                                        chat_template=CHAT_TEMPLATE)
    crops = {"scale_resolution": CROP, "patch_size": PATCH_SIZE, "max_slice_nums": 4}
    processor_class = MiniCPMV4_6Processor if arch == "minicpmv4_6" else MiniCPMV4_7Processor
    return processor_class(image_processor=MiniCPMV4_6ImageProcessor(**crops),
                           video_processor=MiniCPMV4_6VideoProcessor(**crops), tokenizer=tokenizer,
                           chat_template=CHAT_TEMPLATE)


def build_tiny_vlm(arch: str, tokenizer, hidden_size: int = 64, layers: int = 2, vision_hidden_size: int = 32,
                   vision_layers: int = 2, seed: int = 0):
    """A random MiniCPM-V of ``arch`` sized for ``tokenizer`` (fp32, eval): a text model of ``layers`` layers of
    width ``hidden_size`` (every fourth, and the last, full attention, the others linear, as Qwen3.5), a vision tower
    of ``vision_layers`` x ``vision_hidden_size``. Weight matrices are drawn with std 0.2 (instead of 0.02) so that
    generations depend on the image and the prompt."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    _require_arch(arch)
    head_dim = 16
    layer_types = ["full_attention" if i % 4 == 3 or i == layers - 1 else "linear_attention" for i in range(layers)]
    text = {"model_type": "qwen3_5_text", "vocab_size": len(tokenizer), "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size, "num_hidden_layers": layers,
            "layer_types": layer_types, "num_attention_heads": hidden_size // head_dim,
            "num_key_value_heads": 2, "head_dim": head_dim, "linear_num_key_heads": 2,
            "linear_num_value_heads": hidden_size // head_dim, "linear_key_head_dim": head_dim,
            "linear_value_head_dim": head_dim, "linear_conv_kernel_dim": 4, "max_position_embeddings": 2048,
            # M-RoPE sections must sum to head_dim / 2 rotary frequencies
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 1.0,
                                "mrope_section": [3, 3, 2], "mrope_interleaved": True},
            "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    vision = {"hidden_size": vision_hidden_size, "intermediate_size": 2 * vision_hidden_size,
              "num_hidden_layers": vision_layers, "num_attention_heads": max(1, vision_hidden_size // 16),
              "patch_size": PATCH_SIZE, "image_size": CROP}
    ids = {"image_token_id": tokenizer.image_token_id, "video_token_id": tokenizer.video_token_id,
           "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    if arch == "minicpmv4_7":  # its canvas M-RoPE needs the marker ids
        (newline,) = tokenizer.encode("\n", add_special_tokens=False)
        ids |= {"image_start_id": tokenizer.image_start_token_id, "image_end_id": tokenizer.image_end_token_id,
                "slice_start_id": tokenizer.slice_start_token_id, "slice_end_id": tokenizer.slice_end_token_id,
                "newline_id": newline}
    # insert_layer_id must be below the vision depth, or the window merger never runs (silently wrong features)
    config = AutoConfig.for_model(arch, text_config=text, vision_config=vision, insert_layer_id=0, **ids)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.normal_(0.0, 0.2)
    return model.eval()


def save_tiny_vlm(out: Path, corpus: Path, arch: str = "minicpmv4_6", seed: int = 0) -> Path:
    """Train the tokenizer on ``corpus`` (one text per line), build processor and model, save them to ``out``."""
    lines = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{corpus}: the tokenizer corpus is empty")
    processor = build_processor(arch, lines)
    model = build_tiny_vlm(arch, processor.tokenizer, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
