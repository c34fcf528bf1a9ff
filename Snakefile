# flame-pipeline: caption -> embed -> train -> evaluate -> report, one rule file per stage.
#   snakemake --profile profiles/local                              # the demo (config/config.yaml)
#   snakemake --profile profiles/slurm --configfile config/cc3m.yaml  # a real run on SLURM

configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/caption.smk"
include: "rules/embed.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"


rule all:
    input:
        f"{RESULTS}/report/report.md",
    default_target: True
