"""`seqjax train ...` that sends its own process a signal at the second batch of epoch 3's
training or validation pass, for tests/test_resume.py:

    python tests/signal_self.py KILL|TERM|INT training|validation train --config ...

The signal is as real as one from outside: SIGKILL ends the process with nothing caught or
cleaned up, SIGTERM and SIGINT reach seqjax's own handlers (seqjax/train/interrupt.py)."""

import os
import signal
import sys

import seqjax.train.loop as loop
from seqjax.cli import main

signum = signal.Signals[f"SIG{sys.argv[1]}"]
training = {"training": True, "validation": False}[sys.argv[2]]
real_iterate = loop.iterate_batches
passes = 0


def iterate_then_signal(data, batch_size, **kw):
    global passes
    if bool(kw.get("shuffle")) != training:
        yield from real_iterate(data, batch_size, **kw)
        return
    passes += 1
    for i, batch in enumerate(real_iterate(data, batch_size, **kw)):
        if passes == 3 and i == 1:
            os.kill(os.getpid(), signum)
        yield batch


loop.iterate_batches = iterate_then_signal
sys.exit(main(sys.argv[3:]))
