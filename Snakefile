# llem: one campaign (config/config.yaml) becomes, per experiment,
#   prepare_model -> environment, baseline, measure (one group) -> aggregate -> ingest -> report.
# All logic lives in the llem package (llem/workflow.py); the rules only call `python -m llem`.
# Another campaign: `snakemake --cores 2 --configfile config/examples/<file>.yaml`.
from snakemake.utils import min_version

min_version("9.0")


# The default campaign (config/config.yaml) is named by the profiles, not here: a profile key
# is the default of a command-line option, so `--configfile FILE` replaces the default campaign
# instead of being merged into it.


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/store.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/summary.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True
