"""`seqjax train --resume` refuses a config other than the run's own, compared as configs:
a run directory saved before a key existed still resumes (the key reads back at its
default), and nothing is trained to find out."""

import pytest

from seqjax.config import dump_config, load_config
from seqjax.train.run import check_run_dir


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


def test_a_changed_setting_is_refused(tmp_path):
    run_dir = _saved(tmp_path, dump_config(load_config("configs/trust.yaml")))
    changed = load_config("configs/trust.yaml", ["train.epochs=7"])
    with pytest.raises(ValueError, match="--resume: the config differs from the one saved"):
        check_run_dir(changed, run_dir, resume=True)
