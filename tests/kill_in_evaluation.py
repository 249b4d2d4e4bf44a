"""`seqjax train ...` that SIGKILLs its own process in the middle of epoch 3's validation
pass (after its first batch), for tests/test_resume.py. Nothing is caught or cleaned up:
the kill is as real as one from outside."""

import os
import signal
import sys

import seqjax.train.loop as loop
from seqjax.cli import main

real_iterate = loop.iterate_batches
passes = 0


def iterate_then_die(data, batch_size, **kw):
    global passes
    if kw.get("shuffle"):
        yield from real_iterate(data, batch_size, **kw)
        return
    passes += 1
    for i, batch in enumerate(real_iterate(data, batch_size, **kw)):
        if passes == 3 and i == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        yield batch


loop.iterate_batches = iterate_then_die
sys.exit(main(sys.argv[1:]))
