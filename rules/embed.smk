# Stage 2: facet embeddings per shard from the frozen LLM (facet-decoupled attention).


rule embed:
    input:
        captions=f"{RESULTS}/caption/{{shard}}.parquet",
        llm=demo_llm(),
    output:
        f"{RESULTS}/embed/{{shard}}.parquet",
    params:
        flags=embed_flags(config["embed"]),
    log:
        f"{RESULTS}/logs/embed/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{shard}}.tsv"
    threads: stage_threads("embed")
    resources:
        **stage_resources("embed"),
    conda:
        "../envs/embed.yaml"
    shell:
        "OMP_NUM_THREADS={threads} flame embed {input.captions} {output} {params.flags} > {log} 2>&1"
