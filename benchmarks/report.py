"""Markdown tables of a committed results file, for the README: the side-by-side ratios and
the seed targets, written from the JSON so no figure is typed by hand.

    python -m benchmarks.report benchmarks/results/cpu_amd-epyc.json   # print the tables
    python -m benchmarks.report --update README.md benchmarks/README.md

A document holds each file's tables between `<!-- report: PATH -->` and `<!-- /report -->`;
`--update` rewrites those blocks from the files as they are now, and
tests/test_readme_report.py fails when a block and its file disagree, so a new results
file reaches the README by one command and an edited figure cannot drift from its JSON.
"""

from __future__ import annotations

import json
import re

from benchmarks import command_line
from seqjax.io import atomic_write_text

KINDS = ("train", "inference_b32")
REFERENCES = ("torch_padded", "torch_padded_1thread", "torch_packed", "flax_nn_rnn")
NOT_ROWS = ("seqjax_unmasked",)  # timed for the masked/unmasked cost, not a way to run
BLOCK = re.compile(r"(<!-- report: (\S+) -->\n)(.*?)(<!-- /report -->)", re.DOTALL)


def _pair(a: float, b: float) -> str:
    return f"{a:.2f} / {b:.2f}"


def _ms(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _row_label(impl: str, gpu: bool) -> str:
    if impl == "seqjax":
        return "scan" if gpu else "one device"
    if impl == "seqjax_per_core":
        return "per core"
    return impl.removeprefix("seqjax_")


def _reference_label(ref: str, env: dict) -> str:
    gpu = env["platform"] == "gpu"
    return {
        "torch_padded": "torch padded (cuDNN)"
        if gpu
        else f"torch padded, {env.get('torch_threads', '?')} threads",
        "torch_padded_1thread": "torch padded, 1 thread",
        "torch_packed": "torch packed" + (" (cuDNN)" if gpu else ""),
        "flax_nn_rnn": "Flax nn.RNN",
    }[ref]


def _config_label(cfg: dict) -> str:
    hidden = "/".join(str(h) for h in cfg["hidden"])
    text = f"B={cfg['batch']} T={cfg['time']} F={cfg['features']} H={hidden}"
    if cfg["layers"] > 1:
        text += f" x{cfg['layers']}"
    if cfg["bi"]:
        text += " bi"
    if "min_len" in cfg:
        text += f", lengths {cfg['min_len']}-{cfg['time']}"
    return text


def _compared_with(timings: dict, impl: str, ref: str) -> dict | None:
    """The timings that seqjax's `impl` row is set against in column `ref`, or None (a blank
    cell): one PyTorch thread pairs with one device, not with a device per core, and a device
    per core pairs with Flax on the same mesh, not with Flax on one device."""
    if ref == "torch_padded_1thread" and impl != "seqjax":
        return None
    if ref == "flax_nn_rnn" and impl == "seqjax_per_core":
        return timings.get("flax_nn_rnn_per_core")
    return timings.get(ref)


def ratio_table(result: dict) -> str:
    """One row per way seqjax ran each stack: its medians and each reference's median over
    its own (> 1: seqjax faster), train / batch-32 inference."""
    env = result["environment"]
    gpu = env["platform"] == "gpu"
    sbs = result["side_by_side"]
    refs = [r for r in REFERENCES if any(r in s["timings"] for s in sbs.values())]
    head = ["LSTM stack", "seqjax", "seqjax ms"] + [f"vs {_reference_label(r, env)}" for r in refs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in sbs.items():
        t = s["timings"]
        impls = [i for i in t if i.startswith("seqjax") and i not in NOT_ROWS]
        for n, impl in enumerate(impls):
            ours = [t[impl][k]["median_ms"] for k in KINDS]
            cells = [
                f"{name}: {_config_label(s['config'])}" if n == 0 else "",
                _row_label(impl, gpu),
                " / ".join(_ms(o) for o in ours),
            ]
            for ref in refs:
                theirs = _compared_with(t, impl, ref)
                if theirs is None:
                    cells.append("")
                else:
                    theirs = [theirs[k]["median_ms"] for k in KINDS]
                    cells.append(_pair(*(a / b for a, b in zip(theirs, ours, strict=True))))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def masked_line(result: dict) -> str:
    costs = [
        f"{name} {_pair(*(s['masked_over_unmasked'][k] for k in KINDS))}"
        for name, s in result["side_by_side"].items()
        if "masked_over_unmasked" in s
    ]
    if not costs:
        return ""
    return (
        "A masked batch costs "
        + ", ".join(costs)
        + " (train / inference) times the unmasked batch of the same padded shape."
    )


def targets_table(result: dict) -> str:
    """Each seed system at its default config against the seed targets."""
    gpu = result["environment"]["platform"] == "gpu"
    memory = "device peak GB" if gpu else "process peak RSS GB"
    head = ["system", "params", "train step ms (batch)", "est. training min"]
    head += ["latency batch 1 ms", memory, "model MB", "targets"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, fig in result["systems"].items():
        values = {row["figure"]: row for row in fig["targets"]}
        failed = [f"FAIL {f.split(' (')[0]}" for f, row in values.items() if not row["pass"]]
        mem = next(row["value"] for f, row in values.items() if f.startswith("peak memory"))
        cells = [
            name,
            f"{fig['num_params']:,}",
            f"{_ms(fig['train_step']['median_ms'])} ({fig['batch']})",
            f"{fig['estimated_training']['minutes']:.2f}",
            f"{fig['inference']['batch_1']['median_ms']:.2f}",
            f"{mem:.2f}",
            f"{fig['model_size_mb']:.2f}",
            "; ".join(failed) or "all pass",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(result: dict, path: str) -> str:
    """The markdown block for one results file (`path` as the document names it)."""
    env = result["environment"]
    machine = env["device"] if env["platform"] == "gpu" else env["cpu"]
    versions = ", ".join(f"{k} {env[k]}" for k in ("jax", "flax", "torch") if k in env)
    parts = [
        f"`{result['command'].strip()}` on {machine}, {versions}. Figures from `{path}`, "
        f"tables by `python -m benchmarks.report {path}`.",
    ]
    if result.get("side_by_side"):
        parts.append("Side by side, train / batch-32 inference, ratios > 1 mean seqjax is faster:")
        parts.append(ratio_table(result))
        masked = masked_line(result)
        if masked:
            parts.append(masked)
    if result.get("systems"):
        parts.append("Seed targets (training < 30 min, < 200 ms per sequence, < 4 GB, < 50 MB):")
        parts.append(targets_table(result))
    return "\n\n".join(parts) + "\n"


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def update(document: str) -> str:
    """`document`'s text with every report block rewritten from its results file."""
    return BLOCK.sub(lambda m: m[1] + render(load(m[2]), m[2]) + m[4], document)


def main(argv: list[str] | None = None) -> None:
    parser = command_line.parser("benchmarks.report", __doc__)
    parser.add_argument("results", nargs="*", help="results JSON files to print as markdown")
    parser.add_argument("--update", nargs="+", default=[], metavar="DOC", help="rewrite blocks")
    args = parser.parse_args(argv)
    if not args.results and not args.update:
        parser.error("name a results file, or documents to --update")
    for path in args.results:
        print(render(load(path), path))
    for doc in args.update:
        with open(doc) as f:
            text = f.read()
        if not BLOCK.search(text):
            parser.error(f"{doc} has no '<!-- report: PATH -->' block")
        atomic_write_text(doc, update(text))  # a failed render leaves the document as it was
        print(f"updated {doc}")


if __name__ == "__main__":
    main()
