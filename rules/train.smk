# Stage 3: the vision tower + projector against all shards' facet embeddings. Checkpoints live in the
# undeclared state directory, so a failed or interrupted job resumes instead of starting over.


rule train:
    input:
        shards=list(SHARDS.values()),
        embeddings=expand(f"{RESULTS}/embed/{{shard}}.parquet", shard=SHARDS),
    output:
        directory(f"{RESULTS}/train/model"),
    params:
        flags=train_flags(config["train"]),
        launcher=train_launcher(config["train"]["resources"]),
        state=f"{STATE}/train",
    log:
        f"{RESULTS}/logs/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/train.tsv"
    threads: stage_threads("train")
    resources:
        **stage_resources("train"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.launcher} train --shards {input.shards} --embeddings {input.embeddings}"
        " --out {output} --state-dir {params.state} {params.flags} > {log} 2>&1"
