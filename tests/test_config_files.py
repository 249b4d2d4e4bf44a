"""Shipped configs: `seqjax train --config trust` from an installed wheel, in a directory
with no clone, trains the repository's configs/trust.yaml."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from seqjax.config import load_config
from seqjax.config_files import config_file, shipped_configs, summary

REPO = Path(__file__).resolve().parents[1]
REPO_CONFIGS = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))


def test_every_repository_config_is_shipped_under_its_name():
    shipped = shipped_configs()
    assert list(shipped) == REPO_CONFIGS
    for name, path in shipped.items():
        assert Path(path).read_text() == (REPO / "configs" / f"{name}.yaml").read_text()
        assert summary(path)  # each says what it trains, for `seqjax configs`
    assert load_config("trend") == load_config(str(REPO / "configs" / "trend.yaml"))


def test_a_path_wins_over_a_name_and_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    (tmp_path / "trust").write_text((REPO / "configs" / "trend.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert config_file("trust") == "trust"
    assert load_config("trust").model_name == "trend"
    with pytest.raises(
        FileNotFoundError,
        match=r"'trusted' is neither a file .* \(did you mean 'trust'\?\); shipped: hybrid, ",
    ):
        load_config("trusted")


def test_a_directory_of_a_shipped_configs_name_does_not_hide_it(tmp_path, monkeypatch):
    """`seqjax train --config trust --run-dir trust` makes ./trust; the next `--config trust`
    in that directory read it as the config's path ("Is a directory")."""
    (tmp_path / "trust").mkdir()
    (tmp_path / "mine").mkdir()
    monkeypatch.chdir(tmp_path)
    assert config_file("trust") == shipped_configs()["trust"]
    with pytest.raises(FileNotFoundError, match=r"'mine' is neither a file nor the name"):
        config_file("mine")


def test_an_installed_wheel_trains_a_shipped_config_by_name_outside_the_clone(tmp_path):
    """The wheel pip builds from this tree carries configs/ as seqjax/configs/; unpacked
    where Python imports it, run from an empty directory, `--config trust` trains."""
    source = tmp_path / "source"  # a copy: building in the tree would leave build/ there
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("seqjax", "configs"):  # seqjax/configs stays a link to ../configs
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("seqjax-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for name in REPO_CONFIGS:
            packed = archive.read(f"seqjax/configs/{name}.yaml").decode()
            assert packed == (REPO / "configs" / f"{name}.yaml").read_text()
        archive.extractall(tmp_path / "site")
    assert "seqjax/py.typed" in names
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    sets = ["data.size=200", "train.epochs=1", "model.hidden_sizes=[4, 4, 4]"]
    run = subprocess.run(
        [sys.executable, "-m", "seqjax.cli", "train", "--config", "trust", "--run-dir", "run",
         "--set", *sets, "train.plots=false"],
        capture_output=True, text=True, timeout=300, cwd=work, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert (work / "run" / "metrics.json").is_file()
    listing = subprocess.run(
        [sys.executable, "-c", "import seqjax.config_files as c; print(c.shipped_configs())"],
        capture_output=True, text=True, timeout=60, cwd=work, env=env,
    )  # fmt: skip
    assert str(tmp_path / "site" / "seqjax" / "configs" / "trust.yaml") in listing.stdout


def test_seqjax_configs_lists_them_and_prints_one(capsys):
    from seqjax import cli

    assert cli.main(["configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == REPO_CONFIGS
    assert "Trust scoring" in lines[REPO_CONFIGS.index("trust")]
    assert cli.main(["configs", "steel_deep"]) == 0
    assert capsys.readouterr().out == (REPO / "configs" / "steel_deep.yaml").read_text()
    assert cli.main(["configs", "steel"]) == 2
    err = capsys.readouterr().err
    assert "'steel' is neither a file nor the name of a shipped config" in err
    assert "(did you mean one of 'steel_bidirectional', 'steel_deep', 'steel_lightweight', " in err
