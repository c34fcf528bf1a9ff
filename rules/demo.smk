# Demo only: synthetic data and a tiny LLM, built inside the DAG.


if DEMO:

    rule demo_data:
        output:
            shards=list(SHARDS.values()),
            manifest=f"{DEMO['out']}/MANIFEST.json",
            corpus=f"{DEMO['out']}/corpus.txt",
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

    rule tiny_llm:
        input:
            corpus=f"{DEMO['out']}/corpus.txt",
        output:
            directory(config["embed"]["llm"]),
        params:
            llm=DEMO["llm"],
        log:
            f"{RESULTS}/logs/tiny_llm.log",
        benchmark:
            f"{RESULTS}/benchmarks/tiny_llm.tsv"
        threads: 1
        conda:
            "../envs/demo.yaml"
        shell:
            "flame tiny-llm {output:q} --corpus {input.corpus:q} --arch {params.llm[arch]}"
            " --vocab-size {params.llm[vocab_size]} --hidden-size {params.llm[hidden_size]}"
            " --layers {params.llm[layers]} --heads {params.llm[heads]} --kv-heads {params.llm[kv_heads]}"
            " --seed {params.llm[seed]} > {log:q} 2>&1"
