# Stage 3: the vision tower + projector against all shards' facet embeddings. Checkpoints live in the
# undeclared state directory, so a failed or interrupted job resumes mid-epoch instead of starting over; the
# settings document is the rerun trigger, the execution settings (workers, checkpoint interval) are not.


rule train:
    input:
        shards=list(SHARDS.values()),
        embeddings=expand(f"{RESULTS}/embed/{{shard}}.parquet", shard=SHARDS),
    output:
        directory(f"{RESULTS}/train/model"),
    params:
        settings=settings_json("train"),
        launcher=train_launcher(config["train"]["resources"]),
        state=f"{STATE}/train",
    log:
        f"{RESULTS}/logs/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/train.tsv"
    threads: stage_threads("train")
    resources:
        **stage_resources("train"),
        **execution_resources("train"),
    conda:
        "../envs/train.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.launcher} train --shards {input.shards} --embeddings {input.embeddings}"
        " --out {output} --state-dir {params.state} --settings {params.settings:q}"
        " --num-workers {resources.num_workers} --checkpoint-every {resources.checkpoint_every} > {log} 2>&1"
