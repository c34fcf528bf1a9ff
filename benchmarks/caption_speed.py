"""Caption throughput (images/s) of the `hf` backend, batching off (1 image per generate) and on.

A random-weight MiniCPM-V (transformers' native class, built by pipeline.demo.tiny_vlm with the sizes given) captions
synthetic images through `HFCaptioner` exactly as `flame caption` does: one long caption per image, greedy, a fixed
number of new tokens (the model never stops early: EOS is suppressed), so every configuration does the same work.

    python benchmarks/caption_speed.py                                   # CPU: a ~20M-parameter model
    python benchmarks/caption_speed.py --device cuda --dtype bfloat16 --hidden 2048 --layers 24 \\
        --vision-hidden 1152 --vision-layers 27 --images 256 --batch 1 32   # ~1.5B parameters, as MiniCPM-V 4.6

Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pipeline.caption.backends import HFCaptioner  # noqa: E402
from pipeline.demo.tiny_vlm import build_processor, build_tiny_vlm  # noqa: E402

CORPUS = ["Describe this image in detail.", "A red star beside a small blue circle at night.",
          "Two objects collide in the fog; the scene feels tense."]


def images(count: int, size: int) -> list[Image.Image]:
    return [Image.effect_noise((size, size), 40 + i % 50).convert("RGB") for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vision-hidden", type=int, default=256)
    parser.add_argument("--vision-layers", type=int, default=4)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=112, help="side in px (112 = one crop of the processor)")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    sizes = {"hidden_size": args.hidden, "layers": args.layers, "vision_hidden_size": args.vision_hidden,
             "vision_layers": args.vision_layers}
    params, rows = caption_rates(sizes, args.device, args.dtype, args.images, args.image_size, args.new_tokens,
                                 args.batch)
    print(f"model: {params / 1e6:.1f} M parameters, {args.dtype} on {args.device}; {args.images} images of "
          f"{args.image_size} px, {args.new_tokens} new tokens each\n")
    print("| batch | images/s | new tokens/s |\n|---:|---:|---:|")
    for row in rows:
        print(f"| {row['batch']} | {row['images_per_s']:.2f} | {row['images_per_s'] * args.new_tokens:.0f} |")


def caption_rates(sizes: dict, device: str, dtype: str, count: int, image_size: int, new_tokens: int,
                  batches: list[int]) -> tuple[int, list[dict]]:
    """Images/s of `HFCaptioner` (loaded from a saved random MiniCPM-V 4.6 of ``sizes``, the keyword arguments of
    `build_tiny_vlm`) captioning ``count`` noise images of ``image_size`` px, ``new_tokens`` greedy tokens each, at
    each batch size of ``batches``. Returns the parameter count and one row per batch size."""
    processor = build_processor("minicpmv4_6", CORPUS * 20)
    model = build_tiny_vlm("minicpmv4_6", processor.tokenizer, **sizes)
    model.generation_config.suppress_tokens = [processor.tokenizer.eos_token_id]  # always new_tokens tokens
    with tempfile.TemporaryDirectory() as tmp:  # load as a checkpoint is loaded
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        del model
        captioner = HFCaptioner.load(tmp, dtype=dtype, device=device)
    params = sum(p.numel() for p in captioner.model.parameters())
    request = {"prompt": "Describe this image in detail.", "count": 1, "max_new_tokens": new_tokens}
    greedy = {"do_sample": False}
    pictures = images(count, image_size)
    captioner.caption(pictures[:2], request, greedy, seed=0)  # warm-up
    rows = []
    for batch in batches:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, len(pictures), batch):
            captioner.caption(pictures[i:i + batch], request, greedy, seed=0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rows.append({"batch": batch, "images_per_s": len(pictures) / (time.perf_counter() - start)})
    return params, rows


if __name__ == "__main__":
    main()
