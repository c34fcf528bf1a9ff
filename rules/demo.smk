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
            llm={key: value for key, value in DEMO["llm"].items() if key != "threads"},  # threads: speed only
        log:
            f"{RESULTS}/logs/demo_llm.log",
        benchmark:
            f"{RESULTS}/benchmarks/demo_llm.tsv"
        threads: DEMO["llm"]["threads"]
        conda:
            "../envs/demo.yaml"
        shell:
            "OMP_NUM_THREADS={threads} flame demo-llm {output:q} --seed {params.llm[seed]}"
            " --corpus-size {params.llm[corpus_size]} --validation-size {params.llm[validation_size]}"
            " --steps {params.llm[steps]} --batch-size {params.llm[batch_size]} --lr {params.llm[lr]}"
            " --arch {params.llm[arch]} --vocab-size {params.llm[vocab_size]} --hidden-size {params.llm[hidden_size]}"
            " --layers {params.llm[layers]} --heads {params.llm[heads]} --kv-heads {params.llm[kv_heads]}"
            " > {log:q} 2>&1"
