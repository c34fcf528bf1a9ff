"""Evaluation: a :class:`~pipeline.evaluate.flame_model.FlameModel` scored on benchmarks read from their real
on-disk formats (one module per task), written as CLIP_benchmark-compatible JSON."""
