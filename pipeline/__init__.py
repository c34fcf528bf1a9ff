"""flame-pipeline: FLAME (arXiv 2411.11927) as a reproducible Snakemake workflow.

Stages, one subpackage each, each with ``stage.run()`` as its entry point and a ``flame`` subcommand
(:mod:`pipeline.cli` only parses): :mod:`~pipeline.caption` -> :mod:`~pipeline.embed` -> :mod:`~pipeline.train`
-> :mod:`~pipeline.evaluate` -> :mod:`~pipeline.report`. Beside them: :mod:`pipeline.settings` with
``schema.yaml`` (every setting and every list of allowed values, once), :mod:`pipeline.variants` (the FLAME
models a config trains and their settings), :mod:`pipeline.llm` (loading LLMs and their content identity),
:mod:`pipeline.gguf` (GGUF files as LLMs: how they load, the config transformers derives), :mod:`pipeline.io`
(one module per on-disk format, atomic writes, locks, provenance) and :mod:`pipeline.demo` (the demo
and the tiny test models; no stage imports it).

Stages talk through files; the imports from one stage into another are these, and only these:

- train -> ``embed.prompts``: the facet slots of the embeddings' templates (one loss slot per facet);
- evaluate -> ``embed.prompts``, ``embed.fda``: FLAME's texts are embedded with the model's own templates by
  the embed stage's FacetEmbedder, and the few-shot scorer runs a prompt once and its answers on its KV cache
  (``fda_forward``);
- evaluate -> ``train.model``, ``train.clip_baseline``, ``train.transforms``: the trained models and the
  evaluation image transform;
- report -> ``evaluate.benchmarks``, ``evaluate.readers``: the retrieval figure re-reads the benchmark's images
  with the reader that evaluated them, by the index its results record;
- demo -> ``embed.fda``, ``embed.prompts``, ``train.schedule``: the demo LLM is pre-trained on the facet prompts
  with facet-decoupled attention and the training schedule.
"""

__version__ = "0.1.0"
