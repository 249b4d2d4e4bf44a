"""`seqjax train --resume` refuses a config other than the run's own, compared as configs:
a run directory saved before a key existed still resumes (the key reads back at its
default), and nothing is trained to find out."""

import pytest

from seqjax.config import dump_config, load_config
from seqjax.train.run import check_run_dir, config_differences


def _saved(tmp_path, text: str):
    (tmp_path / "config.yaml").write_text(text)
    return str(tmp_path)


def test_a_run_saved_before_a_key_existed_resumes(tmp_path):
    cfg = load_config("configs/trust.yaml")
    older = "".join(
        line for line in dump_config(cfg).splitlines(keepends=True) if "bucket_width" not in line
    )
    assert older != dump_config(cfg)  # the text differs; the config does not
    check_run_dir(cfg, _saved(tmp_path, older), resume=True)


def test_a_changed_setting_is_refused_by_name(tmp_path):
    run_dir = _saved(tmp_path, dump_config(load_config("configs/trust.yaml")))
    changed = load_config(
        "configs/trust.yaml",
        ["train.batch_size=16", "train.epochs=7", "model.dropout=0.5", "mesh.cpu_devices=2"],
    )
    with pytest.raises(ValueError, match="--resume: the config differs") as refused:
        check_run_dir(changed, run_dir, resume=True)
    # the keys that may not change are named, in config order; those that may are not
    assert "saved in " + run_dir + "/config.yaml in model.dropout, train.batch_size;" in str(
        refused.value
    )


def test_a_mode_given_or_auto_resumes_where_it_goes_the_same_way(tmp_path):
    """A run saved with `mode: min` (the shipped configs' before "auto") resumes under
    the shipped config's `mode: auto` on its val_loss; a mode the other way is refused."""
    saved = dump_config(load_config("configs/trust.yaml", ["train.mode=min"]))
    check_run_dir(load_config("configs/trust.yaml"), _saved(tmp_path, saved), resume=True)
    other_way = load_config("configs/trust.yaml", ["train.mode=max"])
    with pytest.raises(ValueError, match=r"config.yaml in train.mode;"):
        check_run_dir(other_way, str(tmp_path), resume=True)


def test_where_and_how_a_run_executes_may_change_on_resume(tmp_path):
    """Devices, mesh, host memory, checkpoint retention, outputs and the non-finite policy
    are not what the run computes: a run started on one machine resumes on another."""
    run_dir = _saved(tmp_path, dump_config(load_config("configs/trust.yaml")))
    elsewhere = [
        "mesh.num_devices=4",
        "mesh.cpu_devices=4",
        "host.reuse_freed_memory=true",
        "checkpoint.keep_latest=5",
        "checkpoint.async_save=false",
        "train.nonfinite=skip",
        "train.tensorboard=true",
        "train.plots=false",
        "train.loop_graphs=true",
        "train.profile_steps=[3, 5]",
        "train.epochs=80",
    ]
    changed = load_config("configs/trust.yaml", elsewhere)
    assert len(config_differences(load_config("configs/trust.yaml"), changed)) == len(elsewhere)
    check_run_dir(changed, run_dir, resume=True)


def test_more_epochs_resume_unless_they_set_a_cosine_schedule(tmp_path):
    run_dir = _saved(tmp_path, dump_config(load_config("configs/trust.yaml")))
    check_run_dir(load_config("configs/trust.yaml", ["train.epochs=70"]), run_dir, resume=True)
    cosine = ["optimizer.schedule=warmup_cosine"]
    run_dir = _saved(tmp_path, dump_config(load_config("configs/trust.yaml", cosine)))
    longer = load_config("configs/trust.yaml", [*cosine, "train.epochs=70"])
    with pytest.raises(ValueError, match="change the length of the run's warmup_cosine"):
        check_run_dir(longer, run_dir, resume=True)
    fixed = ["optimizer.decay_steps=500"]
    run_dir = _saved(tmp_path, dump_config(load_config("configs/trust.yaml", [*cosine, *fixed])))
    check_run_dir(
        load_config("configs/trust.yaml", [*cosine, *fixed, "train.epochs=70"]),
        run_dir,
        resume=True,
    )


def test_a_run_stopped_inside_its_first_epoch_is_not_overwritten(tmp_path):
    """Its only checkpoint is in checkpoints_in_epoch (seqjax/train/in_epoch.py): a new run
    there without --resume is refused before config.yaml is rewritten."""
    (tmp_path / "checkpoints_in_epoch" / "20").mkdir(parents=True)
    with pytest.raises(ValueError, match="already holds checkpoints; pass --resume"):
        check_run_dir(load_config("configs/trust.yaml"), str(tmp_path), resume=False)


def test_a_directory_holding_its_own_config_yaml_is_not_overwritten(tmp_path):
    """`seqjax train --config exp/config.yaml --run-dir exp` rewrote the user's config.yaml
    with the resolved config (comments gone, overrides in). A run's own leftovers, beside
    its environment.json (a run stopped before its first checkpoint), may be."""
    cfg = load_config("configs/trust.yaml")
    (tmp_path / "config.yaml").write_text("# mine\n")
    (tmp_path / "notes.txt").write_text("files of other names stay and are no reason\n")
    with pytest.raises(ValueError, match=r"holds config.yaml, which no seqjax run wrote there"):
        check_run_dir(cfg, str(tmp_path), resume=False)
    (tmp_path / "environment.json").write_text("[]")
    check_run_dir(cfg, str(tmp_path), resume=False)
