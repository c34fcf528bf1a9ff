"""`flame import-official`: a checkpoint in the released layout (open_clip's own VisionTransformer under visual.*,
the projector as mm_projector.*, DDP prefixes) becomes a model directory whose image features equal open_clip's
forward through the projector."""

import json

import torch
import torch.nn.functional as F
from open_clip.transformer import VisionTransformer
from torch import nn

from pipeline.cli import main
from pipeline.train.model import load_flame_model


def test_the_released_layout_imports_and_its_features_equal_open_clips_forward(tmp_path):
    torch.manual_seed(0)
    visual = VisionTransformer(image_size=32, patch_size=8, width=64, layers=2, heads=4, mlp_ratio=4.0,
                               ls_init_value=None, output_dim=16, pool_type="avg", output_tokens=True).eval()
    mm_projector = nn.Sequential(nn.Linear(64, 24), nn.GELU(), nn.Linear(24, 24), nn.LayerNorm(24)).eval()
    with torch.no_grad():  # random, not init values: a swapped or missed key shows
        for p in [*visual.parameters(), *mm_projector.parameters()]:
            p.normal_(0, 0.2)
    state = {**{f"module.visual.{k}": v for k, v in visual.state_dict().items()},
             **{f"module.mm_projector.{k}": v for k, v in mm_projector.state_dict().items()},
             "module.logit_scale": torch.tensor(2.5), "module.logit_bias": torch.tensor(-9.0)}
    torch.save({"epoch": 32, "state_dict": state}, tmp_path / "released.pt")
    assert main(["import-official", str(tmp_path / "released.pt"), str(tmp_path / "model"), "--heads", "4",
                 "--llm", "some/llm"]) == 0
    model, config = load_flame_model(tmp_path / "model")
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        _, tokens = visual(images)
        expected = F.normalize(mm_projector(tokens).mean(dim=1), dim=-1)
        got = model(images)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert (model.logit_scale.item(), model.logit_bias.item()) == (2.5, -9.0)
    text = json.loads((tmp_path / "model" / "flame_config.json").read_text())["text"]
    assert (text["llm"], text["layer"], text["mode"], text["layout"]) == ("some/llm", 39, "official", "official")
    assert [len(text["trained_templates"][s]["names"]) for s in ("raw", "short", "long")] == [1, 3, 7]
    assert config["vision"]["kwargs"] == {"embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_ratio": 4.0}
