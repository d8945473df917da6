# Shared set-up: the validated campaign plan, spec files, wildcard constraints, get_* functions.
# Every path pattern comes from llem/layout.py (`layout.SPEC`, `layout.log(...)`, ...); a rule
# that reads an earlier rule's output names it (`rules.environment.output.environment`).
from pathlib import Path

from snakemake.exceptions import WorkflowError

from llem import layout
from llem import workflow as llem_workflow
from llem.errors import ConfigError
from llem.measure import orphan

# Jobs call `python -m llem` with the interpreter running this workflow, activated or not.
llem_workflow.put_interpreter_first_on_path()
# Large sweeps plan faster when Python's garbage collector runs less often.
llem_workflow.relax_garbage_collection()
# Jobs stop when this Snakemake is gone (killed), even while their shell was starting them.
orphan.mark_as_starter()

# A bad config stops here, before any job, with one line per problem naming file and field.
try:
    PLAN = llem_workflow.plan_workflow(config, workflow.configfiles)
    llem_workflow.sync_specs(PLAN)
except ConfigError as error:
    raise WorkflowError(f"invalid campaign config:\n{error}") from None


# Units of the `llem_host` resource a measured job (baseline, measure) takes; the local profile
# gives the host exactly this many and every other job takes one, so Snakemake starts no job
# beside a measured one. The host lock (llem.measure.device_lock) holds the same across
# Snakemake instances and users.
HOST_UNITS = 100


wildcard_constraints:
    campaign=layout.WILDCARD_PATTERN,
    run_id=layout.WILDCARD_PATTERN,
    exp=layout.WILDCARD_PATTERN,
    model_key=layout.WILDCARD_PATTERN,
    cycle=layout.CYCLE_WILDCARD_PATTERN,


def get_final_outputs():
    """Targets of the workflow: the ingest receipt and the report of this campaign run."""
    return [PLAN.receipt_path(), PLAN.report_table_path()]


def get_experiment(wildcards):
    """The planned experiment named by a job's wildcards."""
    return PLAN.experiment(wildcards.campaign, wildcards.run_id, wildcards.exp)


def get_model_spec(wildcards):
    """Spec prepare-model reads: the per-model-key file, the same for every campaign."""
    return PLAN.model_spec_path(wildcards.model_key)


def get_model_marker(wildcards):
    """The prepared model folder's marker for this experiment's model."""
    return layout.model_marker_path(get_experiment(wildcards).model_key)


def get_models_dir_of_output(wildcards, output):
    """Models folder holding the marker this job writes (resources/models)."""
    return str(Path(output.marker).parent.parent)


def get_previous_cycle(wildcards):
    """Cycle k waits for cycle k-1, so cycles of one experiment never overlap."""
    cycle = int(wildcards.cycle)
    if cycle == 0:
        return []
    return layout.cycle_dir(wildcards.campaign, wildcards.run_id, wildcards.exp, cycle - 1)


def get_cycle_dirs(wildcards):
    """Every cycle folder of one experiment."""
    get_experiment(wildcards)
    return PLAN.cycle_dirs(wildcards.exp)


def get_campaign_results(wildcards):
    """result.json of every experiment of the campaign run."""
    if (wildcards.campaign, wildcards.run_id) != (PLAN.campaign, PLAN.run_id):
        raise WorkflowError(
            f"{layout.run_dir(wildcards.campaign, wildcards.run_id)} is not the configured "
            "campaign run"
        )
    return PLAN.result_paths()


def get_gpu_count(wildcards):
    """GPUs one experiment uses (0 for CPU experiments); the job allocation's `gpu`."""
    return get_experiment(wildcards).gpu_count


def get_store(wildcards):
    """Store the campaign's results are ingested into."""
    return PLAN.store
