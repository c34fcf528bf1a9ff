# Demo only: synthetic data and the demo LLM (pre-trained on the demo's language), built inside the DAG.


if DEMO:

    rule demo_data:
        output:
            shards=list(SHARDS.values()),
            manifest=f"{DEMO['out']}/MANIFEST.json",
        params:
            out=lambda wildcards, output: Path(output.manifest).parent,
            seed=DEMO["seed"],
            n_shards=DEMO["train_shards"],
            per_shard=DEMO["samples_per_shard"],
            eval_size=DEMO["eval_size"],
            image_size=DEMO["image_size"],
        log:
            f"{RESULTS}/logs/demo_data.log",
        benchmark:
            f"{RESULTS}/benchmarks/demo_data.tsv"
        threads: 1
        conda:
            "../envs/demo.yaml"
        shell:
            "flame demo-data {params.out:q} --overwrite --seed {params.seed} --train-shards {params.n_shards}"
            " --samples-per-shard {params.per_shard} --eval-size {params.eval_size}"
            " --image-size {params.image_size} > {log:q} 2>&1"

    rule demo_llm:
        output:
            directory(config["embed"]["llm"]),
        params:
            settings=as_json(stage_settings(DEMO["llm"])),  # threads: speed only
        log:
            f"{RESULTS}/logs/demo_llm.log",
        benchmark:
            f"{RESULTS}/benchmarks/demo_llm.tsv"
        threads: DEMO["llm"]["threads"]
        conda:
            "../envs/demo.yaml"
        shell:
            "OMP_NUM_THREADS={threads} flame demo-llm {output:q} --settings {params.settings:q} > {log:q} 2>&1"
