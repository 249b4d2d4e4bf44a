"""XLA compile options that record whole loops into CUDA graphs on an NVIDIA GPU.

Why: on a GPU a `lax.scan` step costs its kernel launches and the host's read of the loop
condition, not its arithmetic (an empty scan step took 13.9 µs on an H100,
benchmarks/results/scaling_nvidia-h100-80gb-hbm3.json). With `WHILE` and `CONDITIONAL`
among XLA's command buffer types, a loop becomes a conditional node of a CUDA graph that
the GPU runs itself. Their speed on seqjax's stacks is not measured yet, so nothing turns
them on by default: `train.loop_graphs: true` in a config passes them to the jitted train
and eval steps, and `jax.jit(f, compiler_options=LOOP_GRAPHS)` to any function of yours.
XLA checks the names and values when it compiles, on any backend; the CPU then ignores
them (tests/test_benchmarks.py, tests/test_engine.py).
"""

LOOP_GRAPHS: dict[str, str | int] = {
    "xla_gpu_enable_command_buffer": "FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL",
    "xla_gpu_graph_min_graph_size": 1,
}
