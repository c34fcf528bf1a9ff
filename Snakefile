# flame-pipeline: caption -> embed -> train -> evaluate -> report, one rule file per stage.
# There is no default config: each config is complete on its own, so a real run never inherits demo keys.
#   snakemake --profile profiles/local --configfile config/demo.yaml   # the demo (`make demo`)
#   snakemake --profile profiles/slurm --configfile config/cc3m.yaml   # a real run on SLURM


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/caption.smk"
include: "rules/embed.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"


rule all:
    default_target: True
    input:
        rules.report.output,  # every report file: a missing one (e.g. a plot added later) reruns the report
        [VOCABULARY_MAP] if config["evaluate"]["vocabulary_images"] else [],
