# Demo only: synthetic data and the demo LLM (pre-trained on the demo's language), built inside the DAG; the LLM
# only at demo.llm_out, so an embed.llm naming anything else (a user's model) is never planned over.


if DEMO:

    rule demo_data:
        output:
            shards=list(SHARDS.values()),
            manifest=f"{DEMO['out']}/MANIFEST.json",
        log:
            f"{RESULTS}/logs/demo_data.log",
        benchmark:
            f"{RESULTS}/benchmarks/demo_data.tsv"
        conda:
            "../envs/flame.yaml"
        threads: 1
        params:
            out=lambda wildcards, output: Path(output.manifest).parent,
            seed=DEMO["seed"],
            n_shards=DEMO["train_shards"],
            per_shard=DEMO["samples_per_shard"],
            eval_size=DEMO["eval_size"],
            image_size=DEMO["image_size"],
        shell:
            "flame demo-data {params.out:q} --overwrite --seed {params.seed} --train-shards {params.n_shards}"
            " --samples-per-shard {params.per_shard} --eval-size {params.eval_size}"
            " --image-size {params.image_size} > {log:q} 2>&1"

    rule demo_llm:
        output:
            directory(DEMO["llm_out"]),
        log:
            f"{RESULTS}/logs/demo_llm.log",
        benchmark:
            f"{RESULTS}/benchmarks/demo_llm.tsv"
        conda:
            "../envs/flame.yaml"
        threads: DEMO["llm"]["threads"]
        params:
            settings=as_json(stage_settings(DEMO["llm"])),  # threads: speed only
        shell:
            "OMP_NUM_THREADS={threads} flame demo-llm {output:q} --settings {params.settings:q} > {log:q} 2>&1"
