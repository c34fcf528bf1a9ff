# Stage 2: facet embeddings per shard from the frozen LLM (facet-decoupled attention), once per distinct embedding
# settings of the run's FLAME models: embed/<id>/<shard>.parquet, <id> the hash of the settings (pipeline/variants.py).
# One rule over {shard}, or one rule per chunk of embed.execution.shards_per_job shards (embed_jobs()).


for _rule, _shards, _log in embed_jobs():

    rule:
        name:
            _rule
        input:
            captions=[f"{RESULTS}/caption/{shard}.parquet" for shard in _shards],
            llm=lambda wc: demo_llm(wc.embedding),
        output:
            [f"{RESULTS}/embed/{{embedding}}/{shard}.parquet" for shard in _shards],
        log:
            f"{RESULTS}/logs/embed/{{embedding}}/{_log}.log",
        benchmark:
            f"{RESULTS}/benchmarks/embed/{{embedding}}/{_log}.tsv"
        wildcard_constraints:
            embedding="|".join(EMBEDDINGS),
        conda:
            "../envs/flame.yaml"
        threads: stage_threads("embed")
        resources:
            **embed_resources(len(_shards)),
            **execution_resources("embed"),
        params:
            settings=lambda wc: as_json(EMBEDDINGS[wc.embedding]),
            output_format=OUTPUT_FORMATS["embed"],
        shell:
            f"OMP_NUM_THREADS={{threads}} flame embed {embed_pairs(len(_shards))} --settings {{params.settings:q}}"
            " --token-budget {resources.token_budget} > {log:q} 2>&1"
