# Stage 3: one rule for every model: `flame` (the vision tower + projector against all shards' facet embeddings),
# its variants (config section ablations: a few embed or train keys changed, e.g. one facet), and, when the config
# has a clip_baseline section, `clip` (open_clip's CLIP on the same shards' captions, with the same vision backbone,
# batch, epochs and schedule). Checkpoints live in the undeclared state directory, so a
# failed or interrupted job resumes mid-epoch instead of starting over; the settings document is the rerun
# trigger, the execution settings (workers, checkpoint interval) and data.empty_shards (strictness only) are not.


rule train:
    input:
        shards=list(SHARDS.values()),
        texts=train_texts,
    output:
        directory(f"{RESULTS}/train/{{model}}"),
    log:
        f"{RESULTS}/logs/train/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}.tsv"
    wildcard_constraints:
        model=MODEL_PATTERN,
    conda:
        "../envs/flame.yaml"
    threads: stage_threads("train")
    resources:
        **train_resources(),
        **execution_resources("train"),
        empty_shards=config["data"]["empty_shards"],  # strictness only: a resource, not a rerun trigger
    params:
        settings=lambda wc: model_settings_json(wc.model),
        output_format=OUTPUT_FORMATS["train"],
        command=lambda wc: train_command(wc.model),
        state=lambda wc: f"{STATE}/train/{wc.model}",
        launcher=train_launcher(config["train"]["resources"]),
    shell:
        "OMP_NUM_THREADS={threads} {params.launcher} {params.command[0]} --shards {input.shards:q}"
        " {params.command[1]} {input.texts:q} --out {output:q} --state-dir {params.state:q}"
        " --settings {params.settings:q} --num-workers {resources.num_workers}"
        " --checkpoint-every {resources.checkpoint_every} --empty-shards {resources.empty_shards}"
        " > {log:q} 2>&1"
