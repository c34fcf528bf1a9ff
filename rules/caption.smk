# Stage 1: captions per image shard (resumable: a killed job continues from its partial file in the state dir).


rule caption:
    input:
        shard=lambda wc: SHARDS[wc.shard],
    output:
        f"{RESULTS}/caption/{{shard}}.parquet",
    log:
        f"{RESULTS}/logs/caption/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/caption/{{shard}}.tsv"
    conda:
        "../envs/flame.yaml"
    threads: stage_threads("caption")
    resources:
        **caption_resources(),
        **execution_resources("caption"),
    params:
        settings=settings_json("caption"),
        output_format=OUTPUT_FORMATS["caption"],
        state=lambda wc: Path(f"{STATE}/caption/{wc.shard}").parent,  # the shard name's folders (part1/00000)
    shell:
        "OMP_NUM_THREADS={threads} flame caption {input.shard:q} {output:q} --settings {params.settings:q}"
        " --batch-size {resources.batch_size} --state-dir {params.state:q} > {log:q} 2>&1"
