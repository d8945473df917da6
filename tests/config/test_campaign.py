"""Experiment and campaign config: validation errors name file and field; sweeps expand."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem.config.campaign import (
    config_hash,
    expand_campaign,
    load_campaign,
    make_spec,
    parse_campaign,
    read_experiment_spec,
    write_experiment_spec,
)
from llem.config.models import ExperimentConfig
from llem.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(text)
    return path


def test_unknown_key_is_named_with_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "campaign: c\ndefaults:\n  model_name: m\nexperimnts: []\n")
    with pytest.raises(ConfigError) as err:
        load_campaign(path)
    assert str(path) in str(err.value)
    assert "experimnts" in str(err.value)
    assert "unknown key" in str(err.value)


def test_unknown_nested_experiment_key_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "defaults:\n  model_name: m\nexperiments:\n  - config_name: a\n"
        "    batching: {batch_sise: 4}\n",
    )
    with pytest.raises(ConfigError) as err:
        expand_campaign(load_campaign(path), source=str(path))
    message = str(err.value)
    assert str(path) in message and "batching.batch_sise" in message


def test_bad_value_names_field_and_value(tmp_path: Path) -> None:
    path = _write(tmp_path, "defaults:\n  model_name: m\n  batching: {batch_size: 0}\n")
    with pytest.raises(ConfigError) as err:
        expand_campaign(load_campaign(path), source=str(path))
    assert "batching.batch_size" in str(err.value) and "got 0" in str(err.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_campaign(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_campaign(_write(tmp_path, "defaults: [unclosed\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_campaign(_write(tmp_path, "- a\n- b\n"))


def test_sweep_expands_to_named_experiments() -> None:
    campaign = parse_campaign(
        {
            "defaults": {"model_name": "org/model"},
            "experiments": [{"config_name": "small"}, {"config_name": "big",
                                                      "precision": "bfloat16"}],
            "sweep": {"batching.batch_size": [1, 4], "decoder.mode": ["greedy", "sampling"]},
        }
    )
    experiments = expand_campaign(campaign)
    names = [e.config_name for e in experiments]
    assert len(names) == 8 == len(set(names))
    assert "small_batch_size-1_mode-greedy" in names
    big = next(e for e in experiments if e.config_name == "big_batch_size-4_mode-sampling")
    assert (big.precision, big.batching.batch_size, big.decoder.mode) == (
        "bfloat16", 4, "sampling")


def test_sweep_over_model_names_gives_safe_names() -> None:
    campaign = parse_campaign(
        {"defaults": {}, "sweep": {"model_name": ["HuggingFaceTB/SmolLM2-135M", "./m y"]}}
    )
    names = [e.config_name for e in expand_campaign(campaign)]
    assert names == ["exp_model_name-HuggingFaceTB-SmolLM2-135M", "exp_model_name-m-y"]


def test_duplicate_names_refused() -> None:
    campaign = parse_campaign(
        {"defaults": {"model_name": "m"},
         "experiments": [{"config_name": "a"}, {"config_name": "a"}]}
    )
    with pytest.raises(ConfigError, match="used twice"):
        expand_campaign(campaign)


@pytest.mark.parametrize("name", ["a b", "x;rm -rf", "$(touch p)", "q'uote", "..", "a/b", ""])
def test_unsafe_names_refused(name: str) -> None:
    campaign = parse_campaign({"defaults": {"model_name": "m"},
                               "experiments": [{"config_name": name}]})
    with pytest.raises(ConfigError, match="config_name"):
        expand_campaign(campaign)


def test_unsafe_campaign_name_refused() -> None:
    with pytest.raises(ConfigError, match="campaign"):
        parse_campaign({"campaign": "x y"})


def test_estimate_needs_tdp_and_output_bounds() -> None:
    with pytest.raises(ConfigError, match="cpu_tdp_w"):
        expand_campaign(parse_campaign(
            {"defaults": {"model_name": "m", "energy": {"backend": "estimate"}}}))
    with pytest.raises(ConfigError, match="min_output_tokens"):
        expand_campaign(parse_campaign(
            {"defaults": {"model_name": "m",
                          "decoder": {"min_output_tokens": 9, "max_output_tokens": 8}}}))


def test_config_hash_ignores_name_and_tracks_content() -> None:
    a = ExperimentConfig(config_name="a", model_name="m")
    b = ExperimentConfig(config_name="b", model_name="m")
    c = ExperimentConfig(config_name="a", model_name="m", batching={"batch_size": 2})
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(c)
    assert len(config_hash(a)) == 16


def test_spec_round_trip_and_tamper_detection(tmp_path: Path) -> None:
    exp = ExperimentConfig(config_name="a", model_name="m")
    path = tmp_path / "spec.json"
    write_experiment_spec(make_spec(exp, "camp", "run1"), path)
    spec = read_experiment_spec(path)
    assert spec.config == exp and spec.experiment_id == "camp/run1/a"
    path.write_text(path.read_text().replace('"batch_size": 1', '"batch_size": 3'))
    with pytest.raises(ConfigError, match="does not match"):
        read_experiment_spec(path)


def test_saving_a_time_series_that_is_not_collected_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "defaults:\n  model_name: m\n  timeseries: {save: true}\n")
    with pytest.raises(ConfigError) as err:
        expand_campaign(load_campaign(path), source=str(path))
    message = str(err.value)
    assert str(path) in message and "timeseries" in message
    assert "save: true needs enabled: true" in message and "\n" not in message
    described = ExperimentConfig.model_json_schema()["$defs"]["TimeSeriesConfig"]
    assert "--save-timeseries" not in described["properties"]["save"]["description"]
