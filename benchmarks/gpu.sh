#!/usr/bin/env bash
# The GPU figures in one go, from a copy of the repository on a CUDA machine that already has
# jax, flax, optax, orbax-checkpoint and torch (nothing is installed; seqjax runs from the tree).
#
#     bash benchmarks/gpu.sh [OUTDIR] [STAGE ...]
#
# Stages (default: all, in this order): env tests quick suite backends kernels long scaling;
# also pallas (steel and trend side by side with every GPU variant, the fused kernels'
# tests, then every tiling and warp count on steel's layer: a short budget's first call),
# units (the Pallas kernels' units layout: its GPU tests, then steel and trend side by
# side), units_tiles (its tile widths and warp counts on steel's layer)
# fused (trend's, the hybrid block's and steel's stacks side by side, the GPU's default of
# one scan for both directions beside two), profile (steel's stack's device kernels a loop
# step, train and inference, one scan and two), systems (every seed system's own
# figures), levers (each seed system with its loops in CUDA graphs, with Pallas in either
# layout, and as two scans), buckets (steel_standard's training epoch with its batches cut to length buckets), micro
# (steel's train step at batch 256 whole and in 8 micro-batches: memory against time) and
# projection (LSTM(proj_size) beside PyTorch's, which cuDNN runs there) and cell (a decoding
# loop of LSTMCell beside torch.nn.LSTMCell's and Flax's).
# Each stage's log and JSON land in OUTDIR (default benchmarks/results), the suite's also as
# the README's markdown tables (python -m benchmarks.report); a stage that fails does not
# stop the next.
set -u
out=${1:-benchmarks/results}
shift || true
stages=${*:-env tests quick suite backends kernels long scaling}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
py=${PYTHON:-python3}
kind=$($py -c "from benchmarks.command_line import device_kind; print(device_kind())" 2>/dev/null)

for stage in $stages; do
  echo "=== $stage ($(date -u +%T))"
  case $stage in
    env)
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
      $py -c "import jax, flax, optax, orbax.checkpoint as o, torch; print(jax.__version__, \
flax.__version__, optax.__version__, torch.__version__, jax.devices())"
      ;;
    tests)  # the cuDNN and Pallas numerics, and the layer tests on the GPU in full float32
      JAX_DEFAULT_MATMUL_PRECISION=highest $py -m pytest -q -p no:cacheprovider \
        tests/test_lstm_cudnn.py tests/test_lstm_parity.py tests/test_lstm_padding.py \
        tests/test_lstm_remat.py tests/test_lstm_errors.py tests/test_recurrence.py \
        tests/test_lstm_pallas.py tests/test_lstm_fused.py tests/test_lstm_defaults.py \
        tests/test_lstm_transforms.py tests/test_lstm_streaming.py \
        tests/test_lstm_projection.py tests/test_micro_batches.py tests/test_lstm_time_major.py \
        tests/test_lstm_cell.py \
        tests/test_engine.py::test_loop_graphs_reach_xla_and_change_no_result \
        -k "not two_devices" 2>&1 | tee "$out/gpu_tests.log"  # those need 2 CPU devices
      ;;
    pallas)  # the GPU levers, for a short budget, most telling first: steel and trend side
      # by side with the scan (also fused, with its loops in CUDA graphs, and both), cuDNN,
      # Pallas, PyTorch and Flax, each variant with its difference from the scan (their
      # systems' own figures are the suite stage's); the Pallas kernels' and the fused
      # directions' tests; each tiling and warp count on steel's layer. Each writes its
      # JSON as it goes, so a call cut off at its time limit keeps what was done.
      $py -m benchmarks.side_by_side --only steel --only trend \
        --out "$out/side_by_side_$kind.json" 2>&1 | tee "$out/pallas.log"
      $py -m benchmarks.report "$out/side_by_side_$kind.json" > "$out/side_by_side_$kind.md"
      JAX_DEFAULT_MATMUL_PRECISION=highest $py -m pytest -q -p no:cacheprovider \
        tests/test_lstm_pallas.py tests/test_lstm_fused.py 2>&1 | tee "$out/pallas_tests.log"
      $py -m benchmarks.pallas_tiles --out "$out/pallas_tiles_$kind.json" 2>&1 \
        | tee "$out/pallas_tiles.log"
      ;;
    units)  # the units layout's Pallas kernels (layers/pallas_units.py), never run on a
      # GPU before: their equality tests first (a barrier that never opens shows as NaN
      # within about a second, and `timeout` bounds the rest; the offline sm_90 compile is
      # the CPU's check, left out), then steel and trend side by side with the scan,
      # PyTorch and Flax, in float32 and three TF32 passes: under 8 minutes, for a short
      # budget's first call
      timeout 180 env JAX_DEFAULT_MATMUL_PRECISION=highest $py -m pytest -q -p no:cacheprovider \
        tests/test_lstm_pallas.py -k "units and not hopper" 2>&1 | tee "$out/units_tests.log"
      timeout 330 $py -m benchmarks.side_by_side --only steel --only trend \
        --variant pallas_units --variant pallas_units_tf32x3 \
        --out "$out/side_by_side_units_$kind.json" 2>&1 | tee "$out/units.log"
      ;;
    units_tiles)  # the units layout's tile widths and warp counts on steel's layer
      timeout 300 $py -m benchmarks.pallas_tiles --layout units \
        --out "$out/pallas_tiles_units_$kind.json" 2>&1 | tee "$out/units_tiles.log"
      ;;
    fused)  # the check of the GPU's default of one scan for both directions, trend's and
      # the hybrid block's first (steel's was timed both ways on an H200), each stack
      # written as it finishes
      $py -m benchmarks.side_by_side --only trend --only hybrid_block --only steel \
        --variant two_scans --out "$out/side_by_side_fused_$kind.json" 2>&1 | tee "$out/fused.log"
      $py -m benchmarks.report "$out/side_by_side_fused_$kind.json" \
        > "$out/side_by_side_fused_$kind.md"
      ;;
    profile)  # where steel's step goes on the device: kernels a loop step, their time, and
      # how busy the device is, one scan and two, train and inference
      for mode in "--train" ""; do
        for scans in "" "--two-scans"; do
          name=profile_steel${mode:+_train}${scans:+_two_scans}_$kind
          $py -m benchmarks.profile steel $mode $scans --calls 10 --top 12 \
            --out "$out/$name.json" 2>&1 | tee -a "$out/profile.log"
        done
      done
      ;;
    systems)  # every seed system's own figures against the targets, on today's defaults
      $py -m benchmarks --systems-only --out "$out/systems_$kind.json" 2>&1 \
        | tee "$out/systems.log"
      ;;
    levers)  # each seed system's own train step and inference with each GPU lever on,
      # beside the suite stage's default figures: its loops in CUDA graphs, the Pallas
      # kernels in both layouts (a system whose sizes Pallas refuses fails alone, named in
      # the log), two scans for a bidirectional layer instead of the GPU's one. A lever of
      # several settings joins them with +, and its file is named by the last one's key.
      for lever in train.loop_graphs=true model.lstm_backend=pallas \
          model.lstm_backend=pallas+model.lstm_pallas_layout=units \
          model.lstm_fused_directions=false; do
        sets=()
        for setting in ${lever//+/ }; do sets+=(--set "$setting"); done
        last=${lever##*+}
        for system in steel trend trust hybrid; do
          $py -m benchmarks --only "$system" --systems-only "${sets[@]}" \
            --out "$out/${kind}_${last%%=*}.json" 2>&1 | tee -a "$out/levers.log"
        done
      done
      ;;
    micro)
      $py -m benchmarks.config_ab configs/steel_standard.yaml configs/steel_bidirectional.yaml \
        --a train.batch_size=256 --a train.micro_batches=1 --b train.batch_size=256 \
        --b train.micro_batches=8 --rounds 2 --steps 10 --repeats 5 \
        --out "$out/config_ab_micro_batches_$kind.json" 2>&1 | tee "$out/micro.log"
      ;;
    projection)
      $py -m benchmarks.projection --out "$out/projection_$kind.json" 2>&1 | tee "$out/projection.log"
      ;;
    cell)
      $py -m benchmarks.cell --out "$out/cell_$kind.json" 2>&1 | tee "$out/cell.log"
      ;;
    buckets)
      $py -m benchmarks.buckets --out "$out/buckets_$kind.json" 2>&1 | tee "$out/buckets.log"
      ;;
    quick)
      $py -m benchmarks --quick --out "$out/$kind-quick.json" 2>&1 | tee "$out/quick.log"
      ;;
    suite)
      $py -m benchmarks --out "$out/$kind.json" 2>&1 | tee "$out/$kind.log"
      $py -m benchmarks.report "$out/$kind.json" > "$out/$kind.md"  # the README's tables
      ;;
    backends)
      $py -m benchmarks.backends --out "$out/backends_$kind.json" 2>&1 | tee "$out/backends.log"
      ;;
    kernels)
      $py -m benchmarks.kernels --out "$out/kernels_$kind.json" 2>&1 | tee "$out/kernels.log"
      ;;
    long)
      $py -m benchmarks.long_sequence --out "$out/long_sequence_$kind.json" 2>&1 | tee -a "$out/$stage.log"
      ;;
    scaling)
      $py -m benchmarks.scaling --out-dir "$out" 2>&1 | tee -a "$out/$stage.log"
      ;;
    *) echo "unknown stage $stage" ;;
  esac
done
