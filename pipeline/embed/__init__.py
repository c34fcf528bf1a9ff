"""Embed stage: the frozen LLM over every caption with K facet prompts, facet-decoupled (:func:`stage.run`).
Engine: :mod:`~pipeline.embed.prompts` (templates and text layouts), :mod:`~pipeline.embed.fda` (FacetEmbedder)."""
