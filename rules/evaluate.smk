# Stage 4: one job per (model, benchmark, language), then the report with the models side by side.


rule evaluate:
    input:
        model=f"{RESULTS}/train/{{model}}",
        data=demo_manifest(),
    output:
        f"{RESULTS}/eval/{{model}}/{{benchmark}}/{{language}}.json",
    log:
        f"{RESULTS}/logs/evaluate/{{model}}/{{benchmark}}/{{language}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{model}}/{{benchmark}}/{{language}}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
        benchmark="[^/]+",
        language="[^/]+",
    conda:
        "../envs/flame.yaml"
    threads: stage_threads("evaluate")
    resources:
        **stage_resources("evaluate"),
        **execution_resources("evaluate"),
    params:
        fmt=lambda wc: benchmark(wc.benchmark)["format"],
        path=lambda wc: benchmark(wc.benchmark)["path"],
        prompt=lambda wc: prompt_flag(wc.benchmark),
        long_mean=lambda wc: benchmark(wc.benchmark)["long_mean"],
        subsets=lambda wc: ",".join(benchmark(wc.benchmark)["subsets"]),
        probe=lambda wc: linear_probe_flags(wc.benchmark),
        fewshot=lambda wc: fewshot_settings(wc.benchmark),
        dtype=config["evaluate"]["dtype"],
        cache=f"{STATE}/text_cache",
        rankings=lambda wc: ranking_flags(wc.benchmark, wc.language),
        output_format=OUTPUT_FORMATS["evaluate"],
    shell:
        "OMP_NUM_THREADS={threads} flame evaluate --model-dir {input.model:q} --name {wildcards.benchmark:q}"
        " --format {params.fmt} --data {params.path:q} --language {wildcards.language:q} {params.prompt}"
        " --long-mean {params.long_mean}"
        " --subsets {params.subsets:q}{params.probe} {params.rankings} --fewshot {params.fewshot:q}"
        " --out {output:q} --dtype {params.dtype}"
        " --token-budget {resources.token_budget} --num-workers {resources.num_workers}"
        " --cache-dir {params.cache:q} > {log:q} 2>&1"


rule report:
    input:
        results=evaluation_results(),
        data=demo_manifest(),  # the retrieval figure re-reads the benchmark's images
    output:
        **report_figures(),
        report=report(f"{RESULTS}/report/report.md", category="Results", labels={"what": "tables"}),
        table=report(f"{RESULTS}/report/results.csv", category="Results", labels={"what": "CSV"}),
        plot=report(f"{RESULTS}/report/results.png", category="Results", labels={"what": "headline metrics"}),
        curves=report(f"{RESULTS}/report/recall_curves.png", category="Results", labels={"what": "recall@k"}),
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    conda:
        "../envs/flame.yaml"
    threads: 1
    params:
        title=f"FLAME evaluation: {config['name']}",
        claims=json.dumps(config.get("report", {}).get("claims", [])),
        figure=report_figure_flags(),
    shell:
        'flame report {input.results:q} --out-dir "$(dirname {output.report:q})" --title {params.title:q}'
        " --claims {params.claims:q} {params.figure} > {log:q} 2>&1"


if config["evaluate"]["vocabulary_images"]:

    rule vocabulary_map:
        input:
            model=f"{RESULTS}/train/flame",
            data=demo_manifest(),
        output:
            report(VOCABULARY_MAP, category="Vocabulary mapping"),
        log:
            f"{RESULTS}/logs/vocabulary_map.log",
        benchmark:
            f"{RESULTS}/benchmarks/vocabulary_map.tsv"
        conda:
            "../envs/flame.yaml"
        threads: stage_threads("evaluate")
        resources:
            **stage_resources("evaluate"),
        params:
            images=config["evaluate"]["vocabulary_images"],
            pool=VOCABULARY_POOL,
            dtype=config["evaluate"]["dtype"],
        shell:
            "OMP_NUM_THREADS={threads} flame vocab-map --model-dir {input.model:q} --images {params.images:q}"
            " --pool {params.pool} --out {output:q} --dtype {params.dtype} > {log:q} 2>&1"
