"""Run a test script in a fresh Python whose XLA shows several CPU devices: the device count
is fixed when JAX starts, so a test process that has already started it cannot change it."""

import json
import os
import subprocess
import sys


def run_on_cpu_devices(script: str, count: int = 2, timeout: int = 300) -> dict:
    """The JSON object that `script` prints last, run with `count` CPU devices. The flag is
    appended to the inherited XLA_FLAGS, so the suite's optimisation level carries over."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}"
    env = dict(os.environ, XLA_FLAGS=flags.strip())
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
