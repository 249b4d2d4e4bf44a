"""What the fused Pallas LSTM kernels cost a Hopper GPU in registers, register spills and
shared memory, measured without one: the kernels are lowered for CUDA, as on a GPU, and
their Triton modules compiled for sm_90 (H100, H200) by the `triton` package's compiler and
its ptxas, offline.

    python -m benchmarks.triton_compile [--quick] [--layout units] [--hidden 128 ...] [--out PATH]

Why: a kernel whose registers spill to local memory runs every step through it, and one
that asks for more shared memory than an SM has (227 KB) does not launch; both are visible
on a CPU-only machine, before any GPU time is spent. These are static figures (what ptxas
allocated), not speed. The `triton` package must be able to parse the Triton IR this jax
emits: `pip install -e '.[kernels]'` pins the one checked with jax 0.10.2, 0.11.2 and
0.12.0.1. On a GPU, jaxlib compiles the same IR with its own bundled Triton and XLA's
ptxas, so the figures there can differ somewhat; this is the check that runs everywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from jax.sharding import AbstractDevice, AbstractMesh, use_abstract_mesh

from benchmarks import command_line
from benchmarks.timing import environment
from seqjax.layers.pallas_lstm import (
    LAYOUTS,
    PRECISIONS,
    KernelOptions,
    layout_defaults,
    pallas_layer,
)

SHARED_LIMIT = 227 * 1024  # bytes of shared memory one program may use on an H100/H200 SM
CAPABILITY = 90  # sm_90: H100 and H200


@contextlib.contextmanager
def _captured_modules():
    """The text of every Triton module Pallas lowers while inside. Pallas keeps the module
    only as bytecode in the custom call, so its lowering function is wrapped (a private
    jax function: a jax that renames it fails here, loudly)."""
    from jax._src.pallas.triton import pallas_call_registration as registration

    lower = registration.lowering.lower_jaxpr_to_triton_module
    modules: list[str] = []

    def capture(*args, **kwargs):
        result = lower(*args, **kwargs)
        modules.append(result.module.operation.get_asm(enable_debug_info=False))
        return result

    registration.lowering.lower_jaxpr_to_triton_module = capture
    try:
        yield modules
    finally:
        registration.lowering.lower_jaxpr_to_triton_module = lower


def lowered_for_hopper(fn: jax.stages.Wrapped, *args) -> jax.stages.Lowered:
    """A jitted function traced and lowered for CUDA as for an H100/H200, on any machine.
    Since jax 0.11 Pallas's Triton lowering asks the device for its compute capability, so
    where there is no GPU the target is named by an abstract device (an H100; the H200 is
    the same sm_90), which must be in place while tracing, not only while lowering."""
    hopper = AbstractDevice(device_kind="NVIDIA H100 80GB HBM3", num_cores=132, platform="gpu")
    with use_abstract_mesh(AbstractMesh((1,), ("batch",), abstract_device=hopper)):
        return fn.trace(*args).lower(lowering_platforms=("cuda",))


def triton_modules(hidden: int, opts: KernelOptions, batch: int = 32, steps: int = 8):
    """{kernel name: Triton module text} of a bidirectional layer's forward and backward
    kernels at this hidden size. The step count and batch do not change a kernel's code
    (one program runs one block of rows; the loop over time is not unrolled)."""
    xproj = jnp.zeros((2, steps, batch, 4 * hidden))
    w, h0 = jnp.zeros((2, hidden, 4 * hidden)), jnp.zeros((2, batch, hidden))
    lengths = jnp.full((batch,), steps)

    def loss(xproj, w, h0):
        (h_n, c_n), ys = pallas_layer(
            xproj, w, lengths, h0, h0,
            unit=opts.unit, precision=opts.precision, num_warps=opts.num_warps,
            layout=opts.layout,
        )  # fmt: skip
        return jnp.sum(ys) + jnp.sum(h_n * c_n)

    with _captured_modules() as modules:
        lowered_for_hopper(jax.jit(jax.grad(loss, argnums=(0, 1, 2))), xproj, w, h0)
    return {re.match(r"module @(\w+)", text).group(1): text for text in modules}


def _nvidia_tool(name: str) -> str:
    import triton.backends.nvidia as nvidia

    return str(Path(nvidia.__file__).parent / "bin" / name)


def compile_for_hopper(module: str, num_warps: int) -> dict:
    """Compiles one Triton module for sm_90 as jaxlib would (one pipeline stage: the
    kernels' `CompilerParams`), then reads what ptxas allocated: Triton's PTX run through
    its ptxas again with Triton's flags and `-v`, which reports the spills."""
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import compile as triton_compile

    with tempfile.TemporaryDirectory() as tmp, knobs.cache.scope():
        source = os.path.join(tmp, "kernel.ttir")  # the suffix tells Triton what it is
        Path(source).write_text(module)
        knobs.cache.dir = os.path.join(tmp, "cache")  # empty: a true compile time
        start = time.perf_counter()
        kernel = triton_compile(
            source,
            target=GPUTarget("cuda", CAPABILITY, 32),
            options={"num_warps": num_warps, "num_stages": 1},
        )
        seconds = time.perf_counter() - start
        ptx = os.path.join(tmp, "kernel.ptx")
        Path(ptx).write_text(kernel.asm["ptx"])
        log = subprocess.run(
            [_nvidia_tool("ptxas"), "-lineinfo", "-v", "--regAllocOptLevel=2",
             f"--gpu-name=sm_{CAPABILITY}a", ptx, "-o", os.path.join(tmp, "kernel.o")],
            capture_output=True, text=True, check=True,
        ).stderr  # fmt: skip
    spills = re.search(
        r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", log
    )
    registers = re.search(r"Used (\d+) registers", log)
    if spills is None or registers is None:
        raise RuntimeError(f"no resource usage in ptxas's report:\n{log}")
    stack, stores, loads = (int(g) for g in spills.groups())
    shared = int(kernel.metadata.shared)
    text = kernel.asm["ptx"]
    return {
        "registers": int(registers.group(1)),
        "stack_bytes": stack,  # per thread: spilled registers and local arrays
        "spill_store_bytes": stores,  # in the code, not per step
        "spill_load_bytes": loads,
        "shared_bytes": shared,
        "fits_shared": shared <= SHARED_LIMIT,
        "spills": stores + loads > 0,
        "ptx_fma_f32": text.count("fma.rn.f32"),  # in the code: the CUDA cores' matmul work
        "ptx_mma": text.count("mma.sync"),  # in the code: tensor-core instructions
        "compile_s": round(seconds, 1),  # Triton and ptxas on this machine's CPU
    }


def candidates(
    hidden: int, precisions=None, units=None, warps=None, layout: str = "rows"
) -> list[KernelOptions]:
    """The kernel options worth comparing at this hidden size: each precision, tile width
    (capped at H, so a wider one is the same kernel) and warp count."""
    rows = layout == "rows"
    grid = {
        KernelOptions(unit=min(unit, hidden), precision=precision, num_warps=w, layout=layout): None
        for precision in precisions or PRECISIONS
        for unit in units or ((32, 64, 128) if rows else (16, 32))
        for w in warps or ((4, 8, 16) if rows else (4, 8))
    }
    return list(grid)


def measure(hidden: int, opts: KernelOptions) -> dict:
    """Both kernels' figures for one layer shape and kernel options."""
    modules = triton_modules(hidden, opts)
    row = {name: compile_for_hopper(text, opts.num_warps) for name, text in modules.items()}
    figures = " | ".join(
        f"{name.removesuffix('_kernel'):14} reg {r['registers']:3} "
        f"spills {r['spill_store_bytes']:5} B "
        f"shared {r['shared_bytes'] // 1024:3} KB"
        for name, r in row.items()
    )
    print(
        f"H={hidden:<4} unit {opts.unit:<4} warps {opts.num_warps} {opts.precision:8} {figures}",
        flush=True,
    )
    return row


def toolchain() -> dict:
    import triton

    version = subprocess.run(
        [_nvidia_tool("ptxas"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    return {"triton": triton.__version__, "ptxas": version, "target": f"sm_{CAPABILITY}"}


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.triton_compile", __doc__)
    parser.add_argument(
        "--quick", action="store_true", help="the default tiling, both precisions, H=64 128 256"
    )
    parser.add_argument("--hidden", type=int, action="append", help="default 64 128 256")
    parser.add_argument(
        "--unit", type=int, action="append", help="default 32 64 128 (rows), 16 32 (units)"
    )
    parser.add_argument(
        "--warps", type=int, action="append", help="default 4 8 16 (rows), 4 8 (units)"
    )
    parser.add_argument("--precision", choices=sorted(PRECISIONS), action="append")
    parser.add_argument(
        "--layout", choices=LAYOUTS, default="rows", help="the kernels' layout (pallas_layer)"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    hiddens = args.hidden or [64, 128, 256]
    result = {
        "command": command_line.command("benchmarks.triton_compile", argv),
        "environment": {**environment(), **toolchain()},
        "shared_limit_bytes": SHARED_LIMIT,
        "layout": args.layout,
        "defaults": {
            "unit": layout_defaults(args.layout).unit,
            "num_warps": layout_defaults(args.layout).num_warps,
        },
        "rows": [],
    }
    for hidden in hiddens:
        if args.quick:
            base = layout_defaults(args.layout)
            grid = [
                dataclasses.replace(base, unit=min(base.unit, hidden), precision=p)
                for p in args.precision or PRECISIONS
            ]
        else:
            grid = candidates(hidden, args.precision, args.unit, args.warps, args.layout)
        for opts in grid:
            row = measure(hidden, opts)
            result["rows"].append(
                {"hidden": hidden, "unit": opts.unit, "num_warps": opts.num_warps,
                 "precision": opts.precision, "layout": opts.layout, **row}
            )  # fmt: skip
    quick = "-quick" if args.quick else ""
    layout = "" if args.layout == "rows" else f"_{args.layout}"
    out = args.out or f"benchmarks/results/triton_sm{CAPABILITY}{layout}{quick}.json"
    command_line.write_result(out, result)
    return result


if __name__ == "__main__":
    main()
