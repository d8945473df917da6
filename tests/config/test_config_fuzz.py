"""Hostile and careless campaign files: each is refused whole, before any job, in one line.

Every case is a config that used to pass the check and then failed (or ran away) later: a
number given as a bool or a string, a number too large or infinite, a repeated key, a name too
long for a file system, a sweep that YAML anchors blow up, a prompts file or a model folder
that `llem measure` would only refuse after its baseline. Each is run as `snakemake -n` on a
tiny campaign in a fresh folder and must stop with one line naming the file and the field
(or line), with no spec file or job output written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llem.config.campaign import load_campaign
from llem.errors import ConfigError
from llem.workflow import plan_campaign, plan_campaign_file
from tests.workflow.test_campaign import snakemake

REPO = Path(__file__).resolve().parents[2]

HEAD = "campaign: fuzz\nrun_id: run1\n"
DEFAULTS = "defaults:\n  model_name: org/model\n  device: cpu\n"

#: Ten sweep keys sharing one anchored list of three values: 3**10 = 59,049 experiments.
BOMB_KEYS = [
    "batching.batch_size", "decoder.max_output_tokens", "decoder.top_k", "decoder.seed",
    "prompts.num_prompts", "prompts.seed", "prompts.max_input_tokens", "num_cycles",
    "energy.min_window_sec", "warmup.thermal_floor_sec",
]
BOMB = HEAD + DEFAULTS + "sweep:\n" + f"  {BOMB_KEYS[0]}: &three [1, 2, 3]\n" + "".join(
    f"  {key}: *three\n" for key in BOMB_KEYS[1:]
)

CUSTOM_CODE_CONFIG = {
    "model_type": "fuzz-custom-arch",
    "auto_map": {"AutoConfig": "modeling.FuzzConfig",
                 "AutoModelForCausalLM": "modeling.FuzzForCausalLM"},
}


def _defaults(extra: str) -> str:
    return HEAD + DEFAULTS + textwrap.indent(textwrap.dedent(extra), "  ")


# (id, campaign text, what the one error line must name besides the file)
WORKFLOW_CASES = [
    ("batch-size-bool", _defaults("batching: {batch_size: true}\n"),
     "batching.batch_size: Input should be a valid integer (got True)"),
    ("batch-size-string", _defaults("batching: {batch_size: '4'}\n"),
     "batching.batch_size: Input should be a valid integer (got '4')"),
    ("batch-size-1e30", _defaults("batching: {batch_size: 1.0e+30}\n"),
     "batching.batch_size: Input should be a valid integer"),
    ("batch-size-past-bound", _defaults("batching: {batch_size: 100000000000000000000}\n"),
     "batching.batch_size: Input should be less than or equal to 100000"),
    ("window-inf", _defaults("energy: {min_window_sec: .inf}\n"),
     "energy.min_window_sec: Input should be a finite number"),
    ("window-nan", _defaults("energy: {min_window_sec: .nan}\n"),
     "energy.min_window_sec: Input should be a finite number"),
    ("window-past-bound", _defaults("energy: {min_window_sec: 1.0e+9}\n"),
     "energy.min_window_sec: Input should be less than or equal to 86400"),
    ("duplicate-top-key", HEAD + "campaign: other\n" + DEFAULTS,
     "line 3: duplicate key 'campaign' (first given on line 1)"),
    ("duplicate-nested-key", _defaults("batching:\n  batch_size: 1\n  batch_size: 8\n"),
     "line 8: duplicate key 'batch_size' (first given on line 7)"),
    ("long-campaign-name", "campaign: " + "c" * 5000 + "\nrun_id: run1\n" + DEFAULTS,
     "campaign: Value error, name is 5000 characters long; at most 200 are allowed"),
    ("long-config-name", HEAD + DEFAULTS + "experiments:\n  - config_name: " + "e" * 5000 + "\n",
     "config_name: Value error, name is 5000 characters long"),
    ("name-with-newline", 'campaign: "fuzz\\n"\nrun_id: run1\n' + DEFAULTS,
     "campaign: Value error, name 'fuzz\\n' may only contain"),
    ("anchors-bomb", BOMB,
     "max_experiments: the campaign expands to 59,049 experiments"),
    ("missing-prompts", _defaults("prompts: {source: jsonl, path: no-such-prompts.jsonl}\n"),
     "experiment exp: prompts.path: no such file: 'no-such-prompts.jsonl'"),
    ("custom-code-model", HEAD + "defaults:\n  model_name: ./custom-model\n  device: cpu\n",
     "experiment exp: trust_remote_code: model folder"),
    ("repeated-gpu", _defaults("device: cuda\ngpus: [0, 0]\n").replace("  device: cpu\n", "", 1),
     "gpus: Value error, GPU 0 is listed twice"),
]


def _dry_run(workdir: Path, text: str) -> tuple[int, str, Path]:
    """`snakemake -n` of ``text`` as the campaign file of a fresh working folder."""
    workdir.mkdir()
    model = workdir / "custom-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(CUSTOM_CODE_CONFIG))
    configfile = workdir / "fuzz campaign.yaml"
    configfile.write_text(text)
    proc = snakemake(workdir, "-n", "--configfile", str(configfile), timeout_sec=120)
    return proc.returncode, proc.stdout + proc.stderr, configfile


def _written(workdir: Path) -> list[Path]:
    """Anything a run wrote beside the inputs: specs, results, logs, Snakemake's records."""
    inputs = {"custom-model", "fuzz campaign.yaml"}
    return sorted(p for p in workdir.iterdir() if p.name not in inputs)


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in WORKFLOW_CASES],
                         ids=[c[0] for c in WORKFLOW_CASES])
def test_bad_campaign_stops_the_workflow_in_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    workdir = tmp_path / "work"
    returncode, out, configfile = _dry_run(workdir, text)
    assert returncode != 0, out[-3000:]
    naming = [line for line in out.splitlines() if str(configfile) in line]
    assert len(naming) == 1, out[-3000:]
    assert expected in naming[0], out[-3000:]
    assert "Traceback" not in out
    assert _written(workdir) == []
    assert not list(workdir.rglob("spec.json"))


def test_anchors_bomb_is_refused_from_list_lengths_without_expanding(tmp_path: Path) -> None:
    """59,049 experiments are counted, not built: planning allocates almost nothing."""
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    probe = textwrap.dedent(f"""
        import json, tracemalloc
        from llem.errors import ConfigError
        from llem.workflow import plan_campaign_file
        tracemalloc.start()
        try:
            plan_campaign_file({str(path)!r})
            message = None
        except ConfigError as error:
            message = str(error)
        print(json.dumps({{"peak": tracemalloc.get_traced_memory()[1], "message": message}}))
    """)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    report = json.loads(proc.stdout)
    assert report["message"] is not None
    assert report["message"].startswith(f"{path}: max_experiments: the campaign expands to "
                                        "59,049 experiments (1 x sweep grid 3 x 3 x 3")
    assert "\n" not in report["message"]
    assert report["peak"] < 5 * 2**20


def test_max_experiments_raises_the_limit() -> None:
    data = {"defaults": {"model_name": "m"}, "sweep": {"batching.batch_size": [1, 2, 3]},
            "experiments": [{"config_name": "a"}, {"config_name": "b"}]}
    with pytest.raises(ConfigError, match=r"expands to 6 experiments .*max_experiments \(5\)"):
        plan_campaign({**data, "max_experiments": 5}, sources=["c.yaml"])
    assert len(plan_campaign({**data, "max_experiments": 6}).experiments) == 6


def test_default_limit_plans_the_dag_benchmark_sweep() -> None:
    """The 1,000-experiment sweep of benchmarks/bench_dag.py fits the default limit."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from bench_dag import sweep_config
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert len(plan_campaign(sweep_config(10, 10, 10)).experiments) == 1000


# Files Snakemake's own reader refuses before the workflow runs; llem's reader (used for spec
# files, plan_campaign_file and the workflow's re-read) names the file and the line.
FILE_CASES = [
    ("not-utf8", b"campaign: caf\xe9\n", "line 1: not UTF-8 text (byte 0xe9 at offset 13)"),
    ("empty", b"", "the file is empty"),
    ("comments-only", b"# nothing here\n", "the file is empty"),
    ("scalar", b"42\n", "a config file must hold a mapping, not int"),
    ("list", b"- a\n- b\n", "a config file must hold a mapping, not list"),
    ("deep", b"defaults: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested"),
    ("alias-loop", b"a: &loop\n  - *loop\n", "a YAML alias refers to itself"),
    ("alias-billion", b"l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        b"l%d: &l%d [" % (i, i) + b", ".join([b"*l%d" % (i - 1)] * 10) + b"]\n"
        for i in range(1, 10)), "holds more than 1,000,000 values"),
]


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_unreadable_campaign_file_is_one_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_bytes(content)
    for read in (load_campaign, plan_campaign_file):
        with pytest.raises(ConfigError) as info:
            read(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ")
        assert expected in message
        assert "\n" not in message
    assert sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "text",
    [
        # YAML's natural forms: an int where a float is expected, merge keys, a small anchor.
        _defaults("energy: {min_window_sec: 3}\nbaseline: {duration_sec: 5}\n"),
        HEAD + "defaults: &base\n  model_name: org/model\n  device: cpu\n"
        "experiments:\n  - <<: *base\n    config_name: a\n    device: cpu\n",
        # A folder with auto_map for an architecture transformers ships, and custom code
        # that the campaign trusts, both plan.
        HEAD + "defaults:\n  model_name: ./custom-model\n  device: cpu\n"
        "  trust_remote_code: true\n",
    ],
    ids=["int-for-float", "merge-key", "trusted-custom-code"],
)
def test_natural_yaml_still_plans(tmp_path: Path, text: str) -> None:
    workdir = tmp_path / "work"
    returncode, out, _ = _dry_run(workdir, text)
    assert returncode == 0, out[-3000:]
    assert list(workdir.rglob("spec.json"))


def test_known_architecture_with_auto_map_needs_no_trust(tmp_path: Path) -> None:
    """transformers loads a shipped architecture with its own code and ignores auto_map."""
    model = tmp_path / "llama-with-auto-map"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({**CUSTOM_CODE_CONFIG, "model_type": "llama"}))
    plan = plan_campaign({"defaults": {"model_name": str(model), "device": "cpu"}})
    assert list(plan.experiments) == ["exp"]
