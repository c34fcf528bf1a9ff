"""On-disk formats, one module each, with its column names or keys, writer, reader and ``VERSION``:
:mod:`~pipeline.io.captions` (caption -> embed), :mod:`~pipeline.io.embeddings` (embed -> train),
:mod:`~pipeline.io.model_dir` (train -> evaluate), :mod:`~pipeline.io.results` (evaluate -> report); image shards
(:mod:`~pipeline.io.shards`); and what every writer shares: atomic writes, Parquet metadata, one-writer locks,
provenance, no output that is an input (:mod:`~pipeline.io.paths`)."""
