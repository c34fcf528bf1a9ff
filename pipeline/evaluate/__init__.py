"""Evaluate stage (:func:`stage.run`): a FLAME or CLIP model (:mod:`~pipeline.evaluate.models`) scored on benchmarks
read from their real on-disk formats (:mod:`~pipeline.evaluate.readers`), one table of formats
(:mod:`~pipeline.evaluate.benchmarks`), one module per task (retrieval, zero-shot, compositionality, linear probe,
vocabulary mapping), written as CLIP_benchmark-compatible JSON (:mod:`pipeline.io.results`)."""
