"""The linear probe against CLIP_benchmark's own (``clip_benchmark.metrics.linear_probe``), run on CPU here with only
its CUDA calls made no-ops, on seeded synthetic features that no probe separates perfectly."""

import sys
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from pipeline.evaluate.linear_probe import (
    WEIGHT_DECAYS,
    ProbeSettings,
    linear_probe,
    probe_logits,
    probe_metrics,
    split_validation,
    train_probe,
)

CLASSES, DIM = 7, 32


def features(per_class: int, seed: int, wrong: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` L2-normalised features ``[CLASSES * per_class, DIM]`` around fixed random class centres, noisy
    enough that classes overlap, and their labels, a share ``wrong`` of them replaced by random ones."""
    centres = torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(CLASSES).repeat(per_class)
    x = F.normalize(centres[labels] + 2.0 * torch.randn(len(labels), DIM, generator=generator), dim=-1)
    replaced = torch.rand(len(labels), generator=generator) < wrong
    return x, torch.where(replaced, torch.randint(0, CLASSES, (len(labels),), generator=generator), labels)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the probes' matrices are tiny, and on a busy machine more threads only wait on each other
    (measured: 14 s instead of 0.2 s per probe under a load of 11 on 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mended_accuracy(output, target, topk=(1,)):
    """CLIP_benchmark's ``accuracy`` (top-k hits over N) without its numpy >= 2.4 break: ``float()`` of a
    1-element array, refused by numpy 2.4."""
    hits = output.topk(max(topk), 1, True, True)[1].t().eq(target.view(1, -1))
    return [hits[:k].float().sum().item() / len(target) for k in topk]


@pytest.fixture
def theirs(monkeypatch):
    """``clip_benchmark.metrics.linear_probe`` on CPU: ``.cuda()`` and ``.to("cuda")`` keep tensors and modules where
    they are, DataParallel passes the module through, and ``accuracy`` is mended (numpy 2.4)."""
    from clip_benchmark.metrics import linear_probe as module

    to = torch.Tensor.to

    def to_unless_cuda(tensor, *args, **kwargs):
        return tensor if args and str(args[0]).startswith("cuda") else to(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cuda", lambda tensor, *args, **kwargs: tensor)
    monkeypatch.setattr(torch.Tensor, "to", to_unless_cuda)
    monkeypatch.setattr(torch.nn.Module, "cuda", lambda module, *args, **kwargs: module)
    monkeypatch.setattr(torch.nn, "DataParallel", lambda module, device_ids=None: module)
    monkeypatch.setattr(module, "accuracy", mended_accuracy)
    return module


def their_loader(theirs, x, y, batch_size=64):
    return torch.utils.data.DataLoader(theirs.FeatureDataset(x, y), batch_size=batch_size, shuffle=True)


def their_evaluate(theirs, tmp_path, fit, val, test, settings: ProbeSettings, permutation_seed: int) -> dict:
    """CLIP_benchmark's ``evaluate`` on features written where it caches them (so it featurizes nothing), with the
    global generator seeded with ``permutation_seed`` for the shuffle of the train features it starts with."""
    folder = tmp_path / "features" / "probe"
    folder.mkdir(parents=True)
    splits = {"train": fit, "val": val, "test": test}
    for split, (x, y) in ((name, pair) for name, pair in splits.items() if pair is not None):
        torch.save(x, folder / f"features_{split}.pt")
        torch.save(y, folder / f"targets_{split}.pt")
    torch.manual_seed(permutation_seed)
    return theirs.evaluate(None, None, None, fewshot_k=-1, batch_size=settings.batch_size, num_workers=0,
                           lr=settings.lr, epochs=settings.epochs, model_id="probe", seed=settings.seed,
                           feature_root=str(tmp_path / "features"), device="cuda",
                           val_dataloader=object() if val is not None else None, amp=False)


def their_split(x, y, settings: ProbeSettings):
    """The train/validation split of ``clip_benchmark eval --val_proportion``: ``random_split`` of the global
    generator after ``torch.manual_seed(seed)`` (here with no model creation drawing from it in between)."""
    torch.manual_seed(settings.seed)
    fit, held = torch.utils.data.random_split(range(len(y)), [1 - settings.val_proportion, settings.val_proportion])
    return (x[list(fit)], y[list(fit)]), (x[list(held)], y[list(held)])


def test_the_defaults_are_clip_benchmarks_cli_defaults_but_the_validation_split(monkeypatch):
    from clip_benchmark.cli import get_parser_args

    monkeypatch.setattr(sys, "argv", ["clip_benchmark", "eval"])
    _, args = get_parser_args()
    ours = ProbeSettings()
    assert (ours.lr, ours.epochs, ours.batch_size, ours.seed) == (args.fewshot_lr, args.fewshot_epochs,
                                                                    args.batch_size, args.seed)
    assert args.normalize is True and args.fewshot_k == -1  # our features are L2-normalised; all of train is used
    assert args.val_proportion is None and ours.val_proportion == 0.2  # documented: we search the weight decay


def test_one_probe_is_clip_benchmarks_probe_weight_for_weight(theirs):
    x, y = features(40, seed=1)
    settings = ProbeSettings()
    for weight_decay in (0.0, 1e-3):
        expected = theirs.train(their_loader(theirs, x, y), DIM, CLASSES, weight_decay, settings.lr,
                                settings.epochs, amp=False, device="cpu", seed=settings.seed)
        got = train_probe(x, y, CLASSES, weight_decay, settings)
        torch.testing.assert_close(got.weight, expected.weight, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.bias, expected.bias, rtol=1e-5, atol=1e-6)
    other = train_probe(x, y, CLASSES, 1e-3, replace(settings, lr=0.01))
    assert (other.weight - expected.weight).abs().max() > 0.1  # the comparison can fail


def test_weight_decay_search_retrain_and_metrics_equal_clip_benchmarks(theirs, tmp_path):
    # batches of 32 and noisy train labels: enough steps for the weight decay to matter, and a peak inside the grid
    settings = ProbeSettings(batch_size=32)
    x, y = features(60, seed=1, wrong=0.3)
    test = features(50, seed=2)
    fit, val = their_split(x, y, settings)
    expected = their_evaluate(theirs, tmp_path, fit, val, test, settings, permutation_seed=5)
    fit_rows, held_rows = split_validation(len(y), settings)
    assert torch.equal(x[held_rows], val[0]) and torch.equal(x[fit_rows], fit[0])  # `eval --val_proportion`'s split
    # CLIP_benchmark first shuffles the train part with the global generator; ours in that order draws its batches
    # (another order alone moves acc1 by 3 points here: the agreement is exact or it is noise)
    torch.manual_seed(5)
    rows = torch.arange(len(y))
    rows[fit_rows] = torch.tensor(fit_rows)[torch.randperm(len(fit_rows))]
    got, weight_decay = linear_probe((x[rows], y[rows]), test, CLASSES, settings)
    assert weight_decay == expected["weight_decay"] and weight_decay in WEIGHT_DECAYS[1:-1]
    assert set(got) == {"lp_acc1", "lp_acc5", "lp_mean_per_class_recall"}
    for name in got:  # float32 means against CLIP_benchmark's float64 counts over N
        assert got[name] == pytest.approx(expected[name], abs=1e-6), name
    assert 0.4 < got["lp_acc1"] < 0.95  # neither chance (1/7) nor separable
    # the comparison can fail: a tenth of the learning rate, or no retraining on train + validation
    for changed, train in ((replace(settings, lr=0.01), (x, y)), (settings, fit)):
        other = probe_metrics(probe_logits(train_probe(*train, CLASSES, weight_decay, changed), test[0]), test[1])
        assert abs(other["lp_acc1"] - expected["lp_acc1"]) > 0.005


def test_without_a_validation_split_weight_decay_0_on_train_alone_as_clip_benchmark(theirs, tmp_path):
    settings = ProbeSettings(val_proportion=0)
    train, test = features(30, seed=3), features(20, seed=4)
    expected = their_evaluate(theirs, tmp_path, train, None, test, settings, permutation_seed=7)
    torch.manual_seed(7)
    order = torch.randperm(len(train[1]))
    got, weight_decay = linear_probe((train[0][order], train[1][order]), test, CLASSES, settings)
    assert expected["weight_decay"] == weight_decay == 0
    for name in got:
        assert got[name] == pytest.approx(expected[name], abs=1e-6), name


def test_acc5_only_above_five_classes_and_recall_is_the_mean_over_test_classes():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 2, 2, 0]), 6).float()
    got = probe_metrics(logits, labels)
    assert got == pytest.approx({"lp_acc1": 4 / 6, "lp_mean_per_class_recall": (1 / 2 + 1 + 2 / 3) / 3})
    assert "lp_acc5" in probe_metrics(logits, torch.tensor([0, 0, 1, 2, 2, 5]))


def test_the_validation_split_is_seeded_and_refuses_an_empty_side():
    assert split_validation(10, ProbeSettings()) == split_validation(10, ProbeSettings())
    fit, held = split_validation(10, ProbeSettings())
    assert len(held) == 2 and sorted(fit + held) == list(range(10))
    assert split_validation(10, ProbeSettings(seed=1)) != (fit, held)
    with pytest.raises(ValueError, match="val_proportion 0.2 of 3 train images"):
        split_validation(3, ProbeSettings())


def test_the_probe_leaves_the_callers_random_state_alone():
    x, y = features(5, seed=1)
    torch.manual_seed(11)
    before = torch.rand(3)
    torch.manual_seed(11)
    train_probe(x, y, CLASSES, 0.0, ProbeSettings(epochs=1))
    assert torch.equal(torch.rand(3), before)
