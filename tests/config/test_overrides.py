"""`--set KEY=VALUE` overrides and how `llem run` builds a campaign from its options."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llem.config.overrides import apply_override, parse_override
from llem.errors import ConfigError
from llem.launch import RunOptions, build_campaign, campaign_name_for, plan_run


def test_values_are_read_as_yaml() -> None:
    assert parse_override("defaults.energy.min_window_sec=0.5") == (
        "defaults.energy.min_window_sec", 0.5)
    assert parse_override("defaults.baseline.enabled=false")[1] is False
    assert parse_override("defaults.energy.backend=estimate")[1] == "estimate"
    assert parse_override("sweep.batching.batch_size=[1, 4]")[1] == [1, 4]
    assert parse_override("defaults.decoder.min_output_tokens=")[1] is None
    assert parse_override("run_id='2'")[1] == "2"


@pytest.mark.parametrize("text", ["novalue", "=3", "defaults..x=1", "defaults.a b=1",
                                  "defaults.x=[1,", "x=" + "[" * 40 + "]" * 40])
def test_malformed_override_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_override(text)
    assert len(str(caught.value).splitlines()) == 1
    assert str(caught.value).startswith("--set ")


def test_sweep_key_stays_one_dotted_key() -> None:
    data: dict = {"sweep": {"precision": ["float32"]}}
    apply_override(data, "sweep.batching.batch_size", [1, 4])
    assert data["sweep"] == {"precision": ["float32"], "batching.batch_size": [1, 4]}


def test_nested_keys_and_list_indices() -> None:
    data: dict = {"defaults": {"model_name": "m"}, "experiments": [{"config_name": "a"}]}
    apply_override(data, "defaults.energy.backend", "estimate")
    apply_override(data, "experiments.0.batching.batch_size", 4)
    assert data["defaults"] == {"model_name": "m", "energy": {"backend": "estimate"}}
    assert data["experiments"][0] == {"config_name": "a", "batching": {"batch_size": 4}}
    with pytest.raises(ConfigError, match="not an index"):
        apply_override(data, "experiments.3.device", "cpu")
    with pytest.raises(ConfigError, match="is a value"):
        apply_override(data, "defaults.model_name.x", 1)


def test_campaign_name_comes_from_the_model_name() -> None:
    assert campaign_name_for("HuggingFaceTB/SmolLM2-135M-Instruct") == "SmolLM2-135M-Instruct"
    assert campaign_name_for("/models/my model (v2)/") == "my-model-v2"
    assert campaign_name_for("$(rm -rf x)") == "rm--rf-x"
    assert campaign_name_for("...") == "campaign"


def test_minimal_campaign_with_options() -> None:
    data, _ = build_campaign(RunOptions(
        model="org/m", batch_sizes=[1, 4], device="cpu", max_output_tokens=8, cycles=3,
        energy="estimate", sets=["defaults.energy.cpu_tdp_w=65"]))
    assert data["campaign"] == "m" and data["run_id"] == "run1"
    assert data["sweep"] == {"batching.batch_size": [1, 4]}
    defaults = data["defaults"]
    assert defaults["model_name"] == "org/m" and defaults["device"] == "cpu"
    assert defaults["decoder"] == {"max_output_tokens": 8, "min_output_tokens": 8}
    assert defaults["num_cycles"] == 3
    assert defaults["energy"] == {"backend": "estimate", "cpu_tdp_w": 65}


def test_options_hold_for_experiments_that_set_their_own_value(tmp_path: Path) -> None:
    configfile = tmp_path / "c.yaml"
    configfile.write_text(yaml.safe_dump({
        "campaign": "c",
        "defaults": {"model_name": "org/m", "device": "auto"},
        "experiments": [{"config_name": "a", "device": "cuda"}, {"config_name": "b"}],
    }))
    plan, data = plan_run(RunOptions(configfile=str(configfile), device="cpu",
                                     sets=["run_id=run7"]))
    assert {name: p.config.device for name, p in plan.experiments.items()} == {
        "a": "cpu", "b": "cpu"}
    assert plan.run_id == "run7"
    assert "device" not in data["experiments"][1]  # b takes the defaults' value


def test_unknown_key_and_bad_value_name_the_field() -> None:
    for sets, field in ((["defaults.energy.bakend=x"], "energy.bakend: unknown key"),
                        (["defaults.energy.min_window_sec=abc"], "energy.min_window_sec"),
                        (["colour=blue"], "colour: unknown key"),
                        (["sweep.batching.batch_size=3"], "sweep.batching.batch_size")):
        with pytest.raises(ConfigError) as caught:
            plan_run(RunOptions(model="org/m", sets=sets))
        message = str(caught.value)
        assert field in message and len(message.splitlines()) == 1, message


def test_neither_model_nor_file_is_refused() -> None:
    with pytest.raises(ConfigError, match="MODEL"):
        build_campaign(RunOptions())
