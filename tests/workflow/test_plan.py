"""Campaign plans and spec files: what the Snakefile reads while it builds the job graph."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llem.config.campaign import read_experiment_spec
from llem.errors import ConfigError
from llem.layout import model_spec_path, result_path, spec_path
from llem.measure.devices import cuda_indices_for_config
from llem.workflow import (
    GC_GEN0_THRESHOLD,
    plan_campaign,
    plan_campaign_file,
    relax_garbage_collection,
    sync_specs,
)


def _campaign(**overrides: object) -> dict:
    data: dict = {
        "campaign": "c1",
        "run_id": "r1",
        "defaults": {"model_name": "org/model", "device": "cpu"},
        "sweep": {"batching.batch_size": [1, 4]},
    }
    data.update(overrides)
    return data


def test_plan_names_paths_and_allocation() -> None:
    plan = plan_campaign(
        _campaign(
            experiments=[
                {"config_name": "one", "model_name": "org/a", "device": "cuda", "gpus": [0, 1],
                 "num_processes": 2},
                {"config_name": "two", "model_name": "org/b", "device": "auto",
                 "num_processes": 3, "num_cycles": 2},
            ],
            sweep={},
        )
    )
    assert list(plan.experiments) == ["one", "two"]
    assert plan.experiments["one"].gpu_count == 2
    assert plan.experiments["two"].gpu_count == 3
    assert plan.cycle_dirs("two") == ["results/c1/r1/two/cycle_0", "results/c1/r1/two/cycle_1"]
    assert plan.result_paths() == [result_path("c1", "r1", "one"), result_path("c1", "r1", "two")]
    assert plan.model_keys() == ["org--a", "org--b"]
    assert plan.model_spec_path("org--b") == "resources/model_specs/org--b.json"


@pytest.mark.parametrize(
    ("fragment", "words"),
    [
        ({"device": "cuda:1", "gpus": [0]}, "device 'cuda:1' names GPU 1 but gpus is [0]"),
        ({"device": "cuda:1", "num_processes": 2}, "names one GPU but num_processes is 2"),
        ({"device": "cuda", "model": {"device_map": "auto"}}, "model.device_map needs gpus"),
        ({"device": "cuda", "gpus": [0, 1], "model": {"device_map": "cuda:2"}},
         "model.device_map 'cuda:2' places the model on GPU 2"),
        ({"device": "cuda", "gpus": [0, 1, 2], "num_processes": 2},
         "gpus lists 3 GPU(s) for num_processes 2"),
        ({"device": "auto", "gpus": [0], "num_processes": 2},
         "gpus lists 1 GPU(s) for num_processes 2"),
    ],
)
def test_contradictory_devices_are_refused_at_plan_time(fragment: dict, words: str) -> None:
    experiment = {"config_name": "bad", "model_name": "org/a", **fragment}
    with pytest.raises(ConfigError) as caught:
        plan_campaign(_campaign(experiments=[experiment], sweep={}), sources=["c.yaml"])
    message = str(caught.value)
    assert message.startswith("c.yaml: experiment 'bad': ") and words in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("fragment", "count"),
    [
        ({"device": "cuda:1"}, 1),
        ({"device": "cuda", "gpus": [0, 1, 2], "model": {"device_map": "auto"}}, 3),
        ({"device": "auto", "num_processes": 2}, 2),
        ({"device": "cpu", "gpus": [0]}, 0),
    ],
)
def test_the_allocation_is_the_gpus_the_experiment_uses(fragment: dict, count: int) -> None:
    plan = plan_campaign(_campaign(experiments=[{"config_name": "e", "model_name": "org/a",
                                                 **fragment}], sweep={}))
    planned = plan.experiments["e"]
    assert planned.gpu_count == count
    assert len(cuda_indices_for_config(planned.config, visible_count=4)) == count


def test_cpu_experiments_ask_for_no_gpu() -> None:
    plan = plan_campaign(_campaign())
    assert [p.gpu_count for p in plan.experiments.values()] == [0, 0]


def test_foreign_campaign_run_is_refused() -> None:
    plan = plan_campaign(_campaign())
    with pytest.raises(ConfigError, match="not the configured campaign run"):
        plan.experiment("c1", "r2", "exp_batch_size-1")
    with pytest.raises(ConfigError, match="not in campaign"):
        plan.experiment("c1", "r1", "nope")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"experiments": [{"config_name": "a b; $(touch x)"}]}, "config_name"),
        ({"experiments": [{"config_name": "report"}], "sweep": {}}, "reserved"),
        ({"run_id": "../up"}, "run_id"),
        ({"defaults": {"model_name": "m", "decoder": {"max_output_tokens": 0}}},
         "decoder.max_output_tokens"),
    ],
)
def test_bad_campaigns_name_file_and_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        plan_campaign(_campaign(**data), sources=[Path("my/config.yaml")])
    assert "my/config.yaml" in str(info.value)
    assert message in str(info.value)


def test_sync_specs_writes_only_changed_specs(tmp_path: Path) -> None:
    plan = plan_campaign(_campaign())
    written = sync_specs(plan, tmp_path)
    assert written == [*(spec_path("c1", "r1", n) for n in plan.experiments),
                       model_spec_path("org--model")]
    first, second = (tmp_path / p for p in written[:2])
    spec = read_experiment_spec(first)
    assert spec.config.batching.batch_size == 1
    assert spec.experiment_id == "c1/r1/exp_batch_size-1"
    assert json.loads(first.read_text())["config_hash"] == spec.config_hash

    old = 1_000_000_000
    for path in (first, second):
        os.utime(path, (old, old))
    assert sync_specs(plan, tmp_path) == []
    assert first.stat().st_mtime == old

    changed = plan_campaign(_campaign(defaults={"model_name": "org/model", "device": "cpu",
                                                "decoder": {"max_output_tokens": 8}},
                                      sweep={"batching.batch_size": [1, 4]}))
    assert len(sync_specs(changed, tmp_path)) == 2
    only_one = plan_campaign(
        _campaign(
            defaults={"model_name": "org/model", "device": "cpu",
                      "decoder": {"max_output_tokens": 8}},
            sweep={},
            experiments=[
                {"config_name": "exp_batch_size-1", "batching": {"batch_size": 1}},
                {"config_name": "exp_batch_size-4", "batching": {"batch_size": 2}},
            ],
        )
    )
    for path in (first, second):
        os.utime(path, (old, old))
    assert sync_specs(only_one, tmp_path) == [spec_path("c1", "r1", "exp_batch_size-4")]
    assert first.stat().st_mtime == old


def test_model_spec_is_the_same_file_and_content_whichever_campaign_plans(
    tmp_path: Path,
) -> None:
    """prepare_model's input may not follow the campaign that ran last: two campaigns
    sharing a model write one per-model-key spec, once, holding only the model's fields."""
    first = plan_campaign(_campaign())
    other = plan_campaign(_campaign(campaign="c2", run_id="other", defaults={
        "model_name": "org/model", "device": "cpu", "precision": "bfloat16",
        "decoder": {"max_output_tokens": 3}}))
    key = first.model_keys()[0]
    assert other.model_keys() == [key]
    assert first.model_spec_path(key) == other.model_spec_path(key) == model_spec_path(key)
    assert model_spec_path(key) in sync_specs(first, tmp_path)
    spec_file = tmp_path / model_spec_path(key)
    old = 1_000_000_000
    os.utime(spec_file, (old, old))
    assert model_spec_path(key) not in sync_specs(other, tmp_path)
    assert spec_file.stat().st_mtime == old
    config = read_experiment_spec(spec_file).config
    assert (config.model_name, config.model.revision, config.model.source) == (
        "org/model", None, "auto")
    assert json.loads(spec_file.read_text()) == first.model_spec(key) == other.model_spec(key)


def test_hub_only_models_get_their_own_folder() -> None:
    hub = plan_campaign(_campaign(defaults={"model_name": "org/model", "device": "cpu",
                                            "model": {"source": "hub"}}))
    assert hub.model_keys() == ["org--model_hub"]
    with pytest.raises(ConfigError, match="random_weights"):
        plan_campaign(_campaign(defaults={"model_name": "llama", "device": "cpu",
                                          "model": {"source": "hub", "random_weights": True}}))


REPO = Path(__file__).resolve().parents[2]
CAMPAIGN_FILES = sorted([REPO / "config" / "config.yaml",
                         *(REPO / "config" / "examples").glob("*.yaml")])


@pytest.mark.parametrize("path", CAMPAIGN_FILES, ids=lambda p: p.name)
def test_shipped_campaigns_are_valid(path: Path) -> None:
    plan = plan_campaign_file(path)
    assert plan.experiments


def test_config_readme_documents_every_key() -> None:
    from pydantic import BaseModel

    from llem.config.models import CampaignConfig, ExperimentConfig

    def keys(model: type[BaseModel], prefix: str = "") -> list[str]:
        out = []
        for name, info in model.model_fields.items():
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                out.extend(keys(ann, f"{prefix}{name}."))
            else:
                out.append(prefix + name)
        return out

    readme = (REPO / "config" / "README.md").read_text()
    missing = [k for k in keys(CampaignConfig) + keys(ExperimentConfig)
               if f"| `{k}` |" not in readme]
    assert missing == []


def test_relaxed_garbage_collection_only_raises_the_young_threshold() -> None:
    """The workflow collects less often but never turns collection off or lowers a setting."""
    import gc

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        relax_garbage_collection()
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, 10, 10)
        assert gc.isenabled()
        gc.set_threshold(10 * GC_GEN0_THRESHOLD, 5, 5)
        relax_garbage_collection()
        assert gc.get_threshold() == (10 * GC_GEN0_THRESHOLD, 5, 5)
    finally:
        gc.set_threshold(*saved)


def test_without_a_profile_or_configfile_the_workflow_asks_for_a_campaign(tmp_path: Path) -> None:
    from tests.workflow.test_campaign import snakemake

    proc = snakemake(tmp_path, "-n", "--workflow-profile", "none")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "no campaign config: pass --configfile FILE" in out
    assert not (tmp_path / "results").exists()
