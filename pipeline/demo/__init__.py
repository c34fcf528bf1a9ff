"""The demo, apart from the product: procedurally drawn scenes and their captions, writers of the training shards
and the benchmark-format evaluation sets, the demo LLM pre-trained on the demo's language, and the tiny model
builders (``tiny_llm``, ``tiny_vlm``) of tests and smoke runs. No stage imports it."""
