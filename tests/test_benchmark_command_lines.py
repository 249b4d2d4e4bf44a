"""The benchmark tools' command lines: --help keeps each docstring's layout, and a tool that
times PyTorch says at once, before measuring or writing anything, when torch is missing.

No torch needed: its absence is simulated, so these run on a machine without it too."""

import importlib
import json
import pkgutil
import sys

import pytest

import benchmarks

TOOLS = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name != "__init__")
TORCH_TOOLS = {  # each with arguments it would otherwise accept
    "__main__": ["--quick", "--only", "trend"],
    "side_by_side": ["--only", "trend", "--repeats", "3"],
    "call_order": ["trend", "--calls", "10"],
    "lstm_layer": ["--repeats", "3"],
    "stack_ab": ["HEAD", "--only", "trend"],
}


def entry_points():
    for name in TOOLS:
        module = importlib.import_module(f"benchmarks.{name}")
        if hasattr(module, "main"):
            yield name, module


@pytest.mark.parametrize("name", [n for n, _ in entry_points()])
def test_help_prints_the_tools_docstring_with_its_layout(name, capsys):
    module = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    prog = "python -m benchmarks" + ("" if name == "__main__" else f".{name}")
    assert printed.startswith(f"usage: {prog} ")
    # every line of the docstring survives as written (argparse's default formatter
    # re-wraps each paragraph, which runs usage lines and tables together)
    lines = [line.rstrip() for line in printed.splitlines()]
    assert [
        line for line in module.__doc__.strip().splitlines() if line.rstrip() not in lines
    ] == []


@pytest.mark.parametrize("name", sorted(TORCH_TOOLS))
def test_a_torch_tool_without_torch_stops_at_once_naming_the_install(
    name, tmp_path, monkeypatch, capsys
):
    module = importlib.import_module(f"benchmarks.{name}")
    monkeypatch.setitem(sys.modules, "torch", None)  # find_spec and import both fail
    out = tmp_path / "out.json"
    argv = TORCH_TOOLS[name] + ["--out", str(out)]
    with pytest.raises(SystemExit) as exit_:
        module.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "torch is not installed: pip install torch==2.13.0" in err
    assert ("--systems-only" in err) == (name == "__main__")
    assert not out.exists()


def test_the_suite_without_torch_measures_the_systems_alone_at_the_settings_given(
    tmp_path, monkeypatch, capsys
):
    """--systems-only needs no torch, and `--set` measures the systems at a changed config
    (what a GPU session compares, e.g. `train.loop_graphs=true`), never into the default
    results file nor into one that holds other settings' figures."""
    from benchmarks.__main__ import main

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(SystemExit):  # the default file holds the default configs' figures
        main(["--quick", "--systems-only", "--set", "train.batch_size=8"])
    bad = tmp_path / "bad.json"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--quick", "--systems-only", "--set", "train.batch=8", "--out", str(bad)])
    assert "error: unknown key train.'batch'" in capsys.readouterr().err  # one usage line
    assert not bad.exists()
    with pytest.raises(SystemExit):  # its one padded batch would misreport length buckets
        main(["--quick", "--systems-only", "--set", "train.bucket_width=50", "--out", str(bad)])
    assert "python -m benchmarks.buckets times length buckets" in capsys.readouterr().err
    assert not bad.exists()
    out = tmp_path / "set.json"
    argv = ["--quick", "--only", "trend", "--systems-only", "--out", str(out)]
    result = main([*argv, "--set", "train.batch_size=8", "--set", "train.loop_graphs=true"])
    assert result["environment"]["torch"] is None
    assert json.loads(out.read_text()) == result
    assert result["settings"] == ["train.batch_size=8", "train.loop_graphs=true"]
    assert result["side_by_side"] == {} and list(result["systems"]) == ["trend"]
    trend = result["systems"]["trend"]
    assert trend["batch"] == 8 and trend["settings"] == result["settings"]
    with pytest.raises(SystemExit):  # nor mixed with figures of other settings
        main(argv)


def test_config_ab_names_a_bad_setting_before_it_measures(tmp_path, capsys):
    from benchmarks.config_ab import main

    out = tmp_path / "ab.json"
    argv = ["configs/trend.yaml", "--a", "train.batch_size=8", "--b", "train.nope=1"]
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert "configs/trend.yaml: unknown key train.'nope'" in err and not out.exists()
    with pytest.raises(SystemExit):
        main(
            [
                "configs/steel_standard.yaml",
                "--a",
                "train.bucket_width=50",
                "--b",
                "host.reuse_freed_memory=false",
            ]
        )
    assert "train.bucket_width=50: the suite times one batch padded" in capsys.readouterr().err


def test_results_record_the_arguments_main_was_given(monkeypatch):
    from benchmarks.command_line import command

    monkeypatch.setattr(sys, "argv", ["-m", "--from-the-process"])
    assert command("benchmarks.scaling", ["--repeats", "2"]) == (
        "python -m benchmarks.scaling --repeats 2"
    )
    assert command("benchmarks.scaling", []) == "python -m benchmarks.scaling"
    assert command("benchmarks.scaling", None) == "python -m benchmarks.scaling --from-the-process"


def test_every_gpu_sh_command_the_docs_print_names_stages_the_script_has():
    """A lent GPU's minutes are few: a stage the README tells the next session to run, or
    the script's own default list, that the script lacks ("unknown stage") or a syntax
    error would spend them. Checked here, where bash parses the script without running it."""
    import re
    import subprocess
    from pathlib import Path

    script = Path("benchmarks/gpu.sh").read_text()
    subprocess.run(["bash", "-n", "benchmarks/gpu.sh"], check=True)
    stages = set(re.findall(r"^    ([a-z]+)\)", script, re.MULTILINE))
    (default,) = re.findall(r"stages=\$\{\*:-([a-z ]+)\}", script)
    assert set(default.split()) <= stages
    printed = []
    for doc in ("README.md", "benchmarks/README.md"):
        text = " ".join(Path(doc).read_text().split())  # commands wrap across lines
        printed += re.findall(r"gpu\.sh (?:OUTDIR|\$OUT) ([a-z ]+)`", text)
    assert len(printed) >= 4
    for command in printed:
        assert set(command.split()) <= stages, command
