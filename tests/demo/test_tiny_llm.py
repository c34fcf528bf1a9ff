import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipeline.demo.tiny_llm import save_tiny_llm
from pipeline.embed.fda import FacetEmbedder
from pipeline.embed.prompts import paper_template
from pipeline.llm import load_llm


def test_saved_directory_loads_through_from_pretrained(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("A red star falls at night.\nA blue circle rests in the fog.\nzwei Objekte stoßen zusammen\n"
                      * 20)
    out = save_tiny_llm(tmp_path / "llm", corpus, arch="qwen2", vocab_size=300, hidden_size=32, num_layers=2,
                        num_heads=2, num_kv_heads=1)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.config.hidden_size == 32
    ids = tokenizer("A red star")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and tokenizer.decode(ids[1:]) == "A red star"
    loaded, loaded_tok = load_llm(str(out), device="cpu")
    a = FacetEmbedder(loaded, loaded_tok, paper_template("short")).encode(["A red star."])
    b = FacetEmbedder(model.eval(), tokenizer, paper_template("short")).encode(["A red star."])
    assert torch.equal(a, b)


def test_missing_llm_directory_names_the_path(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="no-such-llm"):
        load_llm(str(tmp_path / "no-such-llm"), device="cpu")
