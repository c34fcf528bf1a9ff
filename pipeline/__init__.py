"""flame-pipeline: FLAME (arXiv 2411.11927) as a reproducible Snakemake workflow.

Stages (each a `flame` subcommand): caption -> embed -> train -> evaluate -> report.
"""

__version__ = "0.1.0"
