# Stage 4: the evaluations of every model (per model, benchmark and language), then the report with the models side
# by side. A base model's evaluations are one job each (evaluate.jobs: per_benchmark) or one job together
# (per_model); a replica (a model trained with another seed or on a fraction of the images, for the claims and the
# data-efficiency curves) is evaluated in one job on what the claims comparing its base model measure: many small
# evaluations, one start-up.


if EVALUATE_PER_BENCHMARK:

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
            model=BASE_MODEL_PATTERN,
            benchmark="[^/]+",
            language="[^/]+",
        conda:
            "../envs/flame.yaml"
        threads: stage_threads("evaluate")
        resources:
            **stage_resources("evaluate"),
            **execution_resources("evaluate"),
        params:
            arguments=lambda wc: shlex.join(evaluate_arguments(wc.model, wc.benchmark, wc.language)),
            cache=f"{STATE}/text_cache",
            output_format=OUTPUT_FORMATS["evaluate"],
        shell:
            "OMP_NUM_THREADS={threads} flame evaluate --model-dir {input.model:q} {params.arguments} --out {output:q}"
            " --token-budget {resources.token_budget} --num-workers {resources.num_workers}"
            " --cache-dir {params.cache:q} > {log:q} 2>&1"


for _rule, _names in BATCH_RULES.items():

    rule:
        name:
            _rule
        input:
            model=f"{RESULTS}/train/{{model}}",
            data=demo_manifest(),
        output:
            [
                f"{RESULTS}/eval/{{model}}/{name}/{language}.json"
                for name, languages in evaluated(_names[0]).items()
                for language in languages
            ],
        log:
            f"{RESULTS}/logs/evaluate/{{model}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/evaluate/{{model}}.tsv"
        wildcard_constraints:
            model="|".join(map(re.escape, _names)),
        conda:
            "../envs/flame.yaml"
        threads: stage_threads("evaluate")
        resources:
            **stage_resources("evaluate"),
            **execution_resources("evaluate"),
        params:
            jobs=lambda wc: batch_evaluations(wc.model, f"{RESULTS}/eval/{wc.model}/{{benchmark}}/{{language}}.json"),
            cache=f"{STATE}/text_cache",
            output_format=OUTPUT_FORMATS["evaluate"],
        shell:
            "OMP_NUM_THREADS={threads} flame evaluate-batch --jobs {params.jobs:q} -- --model-dir {input.model:q}"
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
        replicas=replicas_json(),
        figure=report_figure_flags(),
    shell:
        'flame report {input.results:q} --out-dir "$(dirname {output.report:q})" --title {params.title:q}'
        " --claims {params.claims:q} --replicas {params.replicas:q} {params.figure} > {log:q} 2>&1"


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
