"""PyTorch weights in and out through safetensors: the seed's trust model and a steel model
built in torch predict the same as seqjax after the move; bad files are named; no pickle."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.cli import main
from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.models import build_model
from seqjax.torch_weights import from_torch_state_dict, load_safetensors, to_torch_state_dict
from seqjax.train.restore import predict, restore_state

torch = pytest.importorskip("torch")
save_file = pytest.importorskip("safetensors.torch").save_file
nn = torch.nn


class SeedTrust(nn.Module):
    """The trust seed: three stacked single-layer LSTMs 256/128/64, dropout, fc."""

    def __init__(self, features=768):
        super().__init__()
        self.lstm1 = nn.LSTM(features, 256, batch_first=True)
        self.lstm2 = nn.LSTM(256, 128, batch_first=True)
        self.lstm3 = nn.LSTM(128, 64, batch_first=True)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(64, 1)

    def forward(self, x):
        x, _ = self.lstm1(x)
        x, _ = self.lstm2(self.dropout(x))
        _, (h, _) = self.lstm3(self.dropout(x))
        return self.fc(h[-1])[:, 0]


class TorchSteel(nn.Module):
    """Steel in torch: packed bidirectional 2-layer LSTM, additive attention, LayerNorm or
    BatchNorm, classifier. LayerNorm eps is 1e-6, Flax's default (torch's is 1e-5)."""

    def __init__(self, hidden=32, norm="layer"):
        super().__init__()
        self.input_norm = nn.LayerNorm(5, eps=1e-6)
        self.lstm = nn.LSTM(5, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.attention = nn.ModuleDict(
            {"proj": nn.Linear(2 * hidden, hidden), "score": nn.Linear(hidden, 1)}
        )
        self.norm = (
            nn.LayerNorm(2 * hidden, eps=1e-6) if norm == "layer" else nn.BatchNorm1d(2 * hidden)
        )
        self.classifier_0 = nn.Linear(2 * hidden, 16)
        self.output = nn.Linear(16, 1)

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.input_norm(x), lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        scores = self.attention["score"](torch.tanh(self.attention["proj"](out)))[..., 0]
        valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        weights = torch.softmax(scores.masked_fill(~valid, -torch.inf), dim=1)
        pooled = self.norm((weights[..., None] * out).sum(1))
        return self.output(torch.relu(self.classifier_0(pooled)))[:, 0]


def test_seed_trust_weights_import_through_the_cli_and_predict_the_same(tmp_path, capsys):
    torch.manual_seed(0)
    seed = SeedTrust().eval()
    weights = tmp_path / "trust.safetensors"
    save_file(seed.state_dict(), str(weights))
    run_dir = tmp_path / "run"
    argv = ["import-torch", "--model", "trust", "--weights", str(weights)]
    assert main([*argv, "--run-dir", str(run_dir), "--set", "data.size=300"]) == 0
    cfg = load_config(str(run_dir / "config.yaml"))
    splits = load_splits(cfg.data)
    state, epoch = restore_state(str(run_dir), cfg, splits["train"])
    assert epoch == 0
    test = splits["test"]
    ours = predict(cfg, state, test)
    with torch.no_grad():
        theirs = torch.sigmoid(seed(torch.from_numpy(test.inputs))).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    out = tmp_path / "back.safetensors"
    assert main(["export-torch", str(run_dir), "--weights", str(out)]) == 0
    back = SeedTrust()
    back.load_state_dict({k: torch.from_numpy(v) for k, v in load_safetensors(str(out)).items()})
    for name, value in seed.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name].numpy(), value.numpy())
    other = tmp_path / "other"  # an imported run resumes: it is checked as a run to train
    sets = ["data.size=300", "train.class_weights=[1, 2, 3]"]
    assert main([*argv, "--run-dir", str(other), "--set", *sets]) == 2
    assert "train.class_weights has 3 weights, but" in capsys.readouterr().err
    assert not other.exists()
    config = (run_dir / "config.yaml").read_text()  # a slip of --weights replaces nothing
    assert main(["export-torch", str(run_dir), "--weights", str(run_dir / "config.yaml")]) == 2
    assert "--weights must end in .safetensors; got" in capsys.readouterr().err
    assert (run_dir / "config.yaml").read_text() == config


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_steel_weights_from_torch_predict_the_same_on_variable_lengths(tmp_path, norm):
    torch.manual_seed(1)
    reference = TorchSteel(norm=norm)
    if norm == "batch":  # non-trivial running statistics
        reference.norm.running_mean.uniform_(-1, 1)
        reference.norm.running_var.uniform_(0.5, 2)
    reference.eval()
    path = tmp_path / "steel.safetensors"
    save_file(reference.state_dict(), str(path))
    model = build_model(
        "steel",
        hidden_size=32,
        bidirectional=True,
        input_norm=True,
        normalization=norm,
        classifier_dims=(16,),
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 40, 5)).astype(np.float32)
    lengths = np.array([40, 7, 25, 1, 33, 12], np.int32)
    x[np.arange(40) >= lengths[:, None]] = 0
    template = jax.eval_shape(model.init, jax.random.key(0), x, lengths)
    variables = from_torch_state_dict(load_safetensors(str(path)), template, "steel")
    ours = model.apply(variables, jnp.asarray(x), jnp.asarray(lengths))
    with torch.no_grad():
        theirs = reference(torch.from_numpy(x), torch.from_numpy(lengths).long()).numpy()
    np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-5)
    exported = to_torch_state_dict(variables, "steel")
    assert set(exported) == set(reference.state_dict()) - {"norm.num_batches_tracked"}


def test_missing_extra_and_misshaped_tensors_are_all_named():
    model = build_model("steel", hidden_size=32, classifier_dims=(16,))
    template = jax.eval_shape(model.init, jax.random.key(0), np.zeros((1, 4, 5)), np.array([4]))
    tensors = to_torch_state_dict(jax.tree.map(np.zeros_like, template), "steel")
    del tensors["lstm.bias_hh_l1"]
    tensors["head.weight"] = np.zeros((1, 2), np.float32)
    tensors["output.weight"] = np.zeros((1, 99), np.float32)
    with pytest.raises(ValueError) as err:
        from_torch_state_dict(tensors, template, "steel")
    message = str(err.value)
    assert "missing ['lstm.bias_hh_l1']" in message and "unexpected ['head.weight']" in message
    assert "output.weight has shape (1, 99), expected (1, 16)" in message


def test_not_a_safetensors_file_is_refused_and_nothing_is_written(tmp_path, capsys):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x80\x04 not a safetensors header")
    run_dir = tmp_path / "run"
    argv = ["import-torch", "--model", "steel", "--weights", str(bad), "--run-dir", str(run_dir)]
    assert main(argv) == 2
    assert "is not a readable safetensors file" in capsys.readouterr().err
    assert not run_dir.exists()


def test_no_code_path_unpickles():
    source = pathlib.Path(__file__).parents[1] / "seqjax"
    pattern = re.compile(r"\bimport pickle|torch\.load|allow_pickle\s*=\s*True|pickle\.loads?\(")
    hits = [
        f"{p}:{n}"
        for p in source.rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []
