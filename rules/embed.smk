# Stage 2: facet embeddings per shard from the frozen LLM (facet-decoupled attention), once per distinct embedding
# settings of the run's FLAME models: embed/<id>/<shard>.parquet, <id> the hash of the settings (pipeline/variants.py).


rule embed:
    input:
        captions=f"{RESULTS}/caption/{{shard}}.parquet",
        llm=lambda wc: demo_llm(wc.embedding),
    output:
        f"{RESULTS}/embed/{{embedding}}/{{shard}}.parquet",
    log:
        f"{RESULTS}/logs/embed/{{embedding}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{embedding}}/{{shard}}.tsv"
    wildcard_constraints:
        embedding="|".join(EMBEDDINGS),
    conda:
        "../envs/flame.yaml"
    threads: stage_threads("embed")
    resources:
        **stage_resources("embed"),
        **execution_resources("embed"),
    params:
        settings=lambda wc: as_json(EMBEDDINGS[wc.embedding]),
        output_format=OUTPUT_FORMATS["embed"],
    shell:
        "OMP_NUM_THREADS={threads} flame embed {input.captions:q} {output:q} --settings {params.settings:q}"
        " --token-budget {resources.token_budget} > {log:q} 2>&1"
