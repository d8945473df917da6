# llem: one campaign (config/config.yaml) becomes, per experiment,
#   prepare_model -> environment, baseline, measure (one group) -> aggregate -> ingest -> report.
# All logic lives in the llem package (llem/workflow.py); the rules only call `python -m llem`.
# Another campaign: `snakemake --cores 2 --configfile config/examples/<file>.yaml`.
from snakemake.utils import min_version

min_version("9.0")


# The default campaign is read only when no --configfile is given, so a campaign file
# replaces it instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/store.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True
