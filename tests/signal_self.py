"""`seqjax train ...` that sends its own process a signal at the second batch of epoch 3's
training or validation pass, or right after the in-epoch checkpoint of step 24 is written
(`checkpoint.every_steps`), for tests/test_resume.py:

    python tests/signal_self.py KILL|TERM|INT training|validation|step_24_saved train ...

The signal is as real as one from outside: SIGKILL ends the process with nothing caught or
cleaned up, SIGTERM and SIGINT reach seqjax's own handlers (seqjax/train/interrupt.py)."""

import os
import signal
import sys

import seqjax.train.loop as loop
from seqjax.cli import main

signum = signal.Signals[f"SIG{sys.argv[1]}"]
phase = sys.argv[2]
training = phase == "training"
real_iterate = loop.iterate_batches
real_save_step = loop.InEpochCheckpointer.save_step
passes = 0


def save_step_then_signal(self, step, *args, **kw):
    real_save_step(self, step, *args, **kw)
    if step == 24:
        self.wait()  # on disk, renamed from its temporary name: complete
        os.kill(os.getpid(), signum)


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


if phase == "step_24_saved":
    loop.InEpochCheckpointer.save_step = save_step_then_signal
else:
    loop.iterate_batches = iterate_then_signal
sys.exit(main(sys.argv[3:]))
