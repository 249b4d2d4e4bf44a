"""The README's performance tables are the committed results files, rendered: a figure
edited by hand, or a results file replaced without `python -m benchmarks.report --update`,
fails here."""

import pytest

from benchmarks import report

DOCUMENTS = ("README.md", "benchmarks/README.md")
AMD = "benchmarks/results/cpu_amd-epyc.json"


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_every_report_block_equals_its_results_file(doc):
    with open(doc) as f:
        text = f.read()
    blocks = report.BLOCK.findall(text)
    assert blocks, f"{doc} has no report block"
    for _, path, body, _ in blocks:
        assert body == report.render(report.load(path), path), (
            f"{doc}: the block of {path} is stale; run "
            "python -m benchmarks.report --update README.md benchmarks/README.md"
        )


def test_the_readme_shows_the_cpu_and_gpu_results():
    with open("README.md") as f:
        paths = [m[1] for m in report.BLOCK.findall(f.read())]
    assert AMD in paths
    assert any("nvidia" in p for p in paths)


def test_cells_are_each_reference_median_over_seqjax_and_threads_pair_up():
    result = report.load(AMD)
    t = result["side_by_side"]["steel"]["timings"]
    rows = [line for line in report.ratio_table(result).splitlines() if line.startswith("|")]
    one_device = next(r for r in rows if r.startswith("| steel"))
    per_core = rows[rows.index(one_device) + 1]
    for impl, row in (("seqjax", one_device), ("seqjax_per_core", per_core)):
        ratios = [t["torch_packed"][k]["median_ms"] / t[impl][k]["median_ms"] for k in report.KINDS]
        assert f"{ratios[0]:.2f} / {ratios[1]:.2f}" in row
    head = rows[0].split(" | ")
    one_thread = head.index("vs torch padded, 1 thread")
    assert one_device.split(" | ")[one_thread] != ""
    assert per_core.split(" | ")[one_thread] == ""  # two cores do not pair with one thread
    costs = result["side_by_side"]["steel"]["masked_over_unmasked"]
    assert f"steel {costs['train']:.2f} / {costs['inference_b32']:.2f}" in report.masked_line(
        result
    )


def test_a_device_per_core_is_set_against_flax_on_the_same_mesh_or_nothing():
    result = report.load(AMD)
    t = result["side_by_side"]["steel"]["timings"]
    t["flax_nn_rnn_per_core"] = {
        k: {"median_ms": 2 * t["seqjax_per_core"][k]["median_ms"]} for k in report.KINDS
    }
    t["flax_nn_rnn"] = {k: {"median_ms": 3 * t["seqjax"][k]["median_ms"]} for k in report.KINDS}

    def flax_cells():
        rows = [
            [cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in report.ratio_table(result).splitlines()
        ]
        one_device = next(r for r in rows if r[0].startswith("steel"))
        per_core = rows[rows.index(one_device) + 1]
        flax = rows[0].index("vs Flax nn.RNN")
        return one_device[flax], per_core[flax]

    assert flax_cells() == ("3.00 / 3.00", "2.00 / 2.00")
    del t["flax_nn_rnn_per_core"]  # a results file from before Flax ran per core
    assert flax_cells() == ("3.00 / 3.00", "")


def test_a_failed_target_is_named():
    result = report.load(AMD)
    result["systems"]["hybrid"]["targets"][2] |= {"value": 6.3, "pass": False}
    row = next(r for r in report.targets_table(result).splitlines() if r.startswith("| hybrid"))
    assert "| 6.30 |" in row and row.endswith("| FAIL peak memory |")


def test_update_rewrites_a_stale_block_and_refuses_a_document_without_one(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n<!-- report: {AMD} -->\nold figures\n<!-- /report -->\nend\n")
    report.main(["--update", str(doc)])
    expected = report.render(report.load(AMD), AMD)
    assert doc.read_text() == f"intro\n<!-- report: {AMD} -->\n{expected}<!-- /report -->\nend\n"
    bare = tmp_path / "bare.md"
    bare.write_text("no blocks\n")
    with pytest.raises(SystemExit):
        report.main(["--update", str(bare)])
    assert "has no '<!-- report: PATH -->' block" in capsys.readouterr().err


def test_a_missing_results_file_leaves_the_document_as_it_was(tmp_path):
    doc = tmp_path / "doc.md"
    text = "<!-- report: no/such.json -->\nkept\n<!-- /report -->\n"
    doc.write_text(text)
    with pytest.raises(FileNotFoundError, match="no/such.json"):
        report.main(["--update", str(doc)])
    assert doc.read_text() == text
