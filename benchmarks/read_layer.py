"""Which layer of a real LLM to read (`embed.layer`): how well each layer's facet embeddings tell scenes apart,
measured on the text side alone, before any training.

For N demo scenes (`pipeline.demo.scenes`), one long caption and one short caption each, as the demo's captions
files hold them, embedded the way the embed stage does (the paper's prompts, facet-decoupled attention; long
captions with the `long` facets, short ones with the `short` facets). One forward pass at full depth gives the
facet states after every decoder layer (forward hooks), and the last layer's after the final norm (`layer: -1`).
Per layer, a text is the mean of its facets' states, centred over the N texts of its kind and L2-normalised; the
score is text-to-text retrieval between the two captions of the same scene: recall@1 and @5, long -> short and
short -> long, out of N. A learned projector can use what a linear map of these states holds; centring removes the
offset all states of a layer share, which a projector's bias absorbs. Chance is 1/N and 5/N.

A layer that finds a scene's other caption carries what the caption says rather than how it is worded, which is
what FLAME's image tower is trained to predict. The score is a proxy: it says nothing of how hard the states are to
predict from pixels.

    python benchmarks/read_layer.py --llm models/SmolLM2-135M-Instruct.Q4_1.gguf --scenes 128

Results go to BENCHMARKS.md by hand, with the machine and date.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time

import torch
import torch.nn.functional as F

from pipeline.demo.captions import long_caption, short_captions
from pipeline.demo.scenes import sample_scene
from pipeline.embed.fda import FacetEmbedder, last_token_states, pad_right
from pipeline.embed.prompts import PAPER_FACETS, paper_template
from pipeline.llm import load_llm


class EveryLayer(FacetEmbedder):
    """A fda embedder over all N decoder layers whose ``encode`` returns ``[texts, K, N*D]``: the facet states after
    decoder layers 1..N side by side (layer n in columns ``(n-1)*D .. n*D``), as ``FacetEmbedder(layer=n)`` gives
    each."""

    def __init__(self, model, tokenizer, template, token_budget: int):
        layers = model.config.num_hidden_layers
        super().__init__(model, tokenizer, template, layer=layers, token_budget=token_budget)
        self.layers = layers
        self.hidden_size *= layers
        self._outputs: list[torch.Tensor] = []
        self._hooks = [block.register_forward_hook(
            lambda module, args, out: self._outputs.append(out[0] if isinstance(out, tuple) else out))
            for block in self.backbone.layers]

    def close(self) -> None:
        """Remove the hooks from the model's layers (they are the model's own modules)."""
        for hook in self._hooks:
            hook.remove()

    def _forward_fda(self, items):
        self._outputs.clear()
        super()._forward_fda(items)  # the prefix pass, then the suffix pass: N hook outputs each
        suffix_states = self._outputs[self.layers:]
        k = self.num_facets
        _, suffix_mask = pad_right([s for t in items for s in t.suffixes], self.pad_id, self.device)
        rows = [last_token_states(h.reshape(len(items) * k, -1, h.shape[-1]), suffix_mask) for h in suffix_states]
        return torch.cat(rows, dim=-1).view(len(items), k, -1)


def per_layer(states: torch.Tensor, layers: int, final_norm: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``[texts, K, N*D]`` -> layer name (``"1"`` .. ``"N"``, ``"-1"``: the last layer after the final norm) ->
    ``[texts, D]``: the mean over facets, centred over the texts, L2-normalised."""
    by_layer = states.view(states.shape[0], states.shape[1], layers, -1)
    named = {str(n + 1): by_layer[:, :, n] for n in range(layers)}
    with torch.inference_mode():
        named["-1"] = final_norm(by_layer[:, :, -1].to(next(final_norm.parameters()).dtype)).float()
    out = {}
    for name, facets in named.items():
        mean = facets.mean(dim=1)
        out[name] = F.normalize(mean - mean.mean(dim=0, keepdim=True), dim=-1)
    return out


def recall(queries: torch.Tensor, gallery: torch.Tensor, k: int) -> float:
    """Fraction of queries i whose own gallery item i is among their k most similar (cosine)."""
    top = (queries @ gallery.T).topk(k, dim=1).indices
    return (top == torch.arange(len(queries))[:, None]).any(dim=1).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", required=True, help="a directory, hub id or .gguf file, as `embed.llm`")
    parser.add_argument("--scenes", type=int, default=128, help="N: scenes, one long and one short caption each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token-budget", type=int, default=8192)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--check", type=int, nargs="*", default=None,
                        help="layers whose hooked states are compared with FacetEmbedder(layer=L) on 4 texts "
                             "(default: N/2 and N)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    scenes = [sample_scene(rng) for _ in range(args.scenes)]
    texts = {"long": [long_caption(s, rng) for s in scenes], "short": [short_captions(s, rng, 1)[0] for s in scenes]}
    model, tokenizer = load_llm(args.llm, dtype=args.dtype, device=args.device)
    layers = model.config.num_hidden_layers
    final_norm = model.get_decoder().norm
    embedded, seconds, check = {}, {}, {}
    for kind, captions in texts.items():
        template = paper_template(PAPER_FACETS[kind])
        embedder = EveryLayer(model, tokenizer, template, args.token_budget)
        start = time.perf_counter()
        states = embedder.encode(captions)
        seconds[kind] = time.perf_counter() - start
        embedder.close()
        if embedder.stats["beyond_sliding_window"]:
            raise SystemExit("some prompts ran as naive passes (beyond the sliding window): not hooked")
        for layer in args.check if args.check is not None else (layers // 2, layers):
            alone = FacetEmbedder(model, tokenizer, template, layer=layer, token_budget=args.token_budget)
            reference = alone.encode(captions[:4])
            hooked = states[:4].view(4, template.num_facets, layers, -1)[:, :, layer - 1]
            check[f"{kind}@{layer}"] = ((hooked - reference).abs().max() / reference.abs().max()).item()
        embedded[kind] = per_layer(states, layers, final_norm)
    n = args.scenes
    rows = []
    for name in [str(i) for i in range(1, layers + 1)] + ["-1"]:
        long, short = embedded["long"][name], embedded["short"][name]
        rows.append({"layer": name, **{f"{a}->{b} R@{k}": recall(q, g, k)
                                       for (a, q), (b, g) in ((("long", long), ("short", short)),
                                                              (("short", short), ("long", long)))
                                       for k in (1, 5)}})
    print(f"{args.llm}: {layers} layers, {n} scenes (chance R@1 {100 / n:.1f} %, R@5 {500 / n:.1f} %); "
          f"embedding took {seconds['long']:.0f} s (long) + {seconds['short']:.0f} s (short); "
          f"hooked vs FacetEmbedder(layer=L), max relative error: {check}")
    print("| layer | long→short R@1 | long→short R@5 | short→long R@1 | short→long R@5 |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['layer']} | " + " | ".join(f"{100 * v:.1f}" for k, v in row.items() if k != "layer") + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"llm": args.llm, "scenes": n, "seed": args.seed, "dtype": args.dtype, "layers": layers,
                       "rows": rows, "seconds": seconds, "check": check, "machine": platform.processor(),
                       "torch": torch.__version__}, f, indent=2)


if __name__ == "__main__":
    main()
