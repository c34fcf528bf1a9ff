# Stage 2: facet embeddings per shard from the frozen LLM (facet-decoupled attention).


rule embed:
    input:
        captions=f"{RESULTS}/caption/{{shard}}.parquet",
        llm=demo_llm(),
    output:
        f"{RESULTS}/embed/{{shard}}.parquet",
    log:
        f"{RESULTS}/logs/embed/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{shard}}.tsv"
    conda:
        "../envs/flame.yaml"
    threads: stage_threads("embed")
    resources:
        **stage_resources("embed"),
        **execution_resources("embed"),
    params:
        settings=settings_json("embed"),
        output_format=OUTPUT_FORMATS["embed"],
    shell:
        "OMP_NUM_THREADS={threads} flame embed {input.captions:q} {output:q} --settings {params.settings:q}"
        " --token-budget {resources.token_budget} > {log:q} 2>&1"
