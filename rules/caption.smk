# Stage 1: captions per image shard.


rule caption:
    input:
        shard=lambda wc: SHARDS[wc.shard],
    output:
        f"{RESULTS}/caption/{{shard}}.parquet",
    params:
        backend=config["caption"]["backend"],
    log:
        f"{RESULTS}/logs/caption/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/caption/{{shard}}.tsv"
    threads: stage_threads("caption")
    resources:
        **stage_resources("caption"),
    conda:
        "../envs/caption.yaml"
    shell:
        "flame caption {input.shard} {output} --backend {params.backend} > {log} 2>&1"
