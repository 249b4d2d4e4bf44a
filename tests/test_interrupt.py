"""`stop_on_signals`: a first SIGINT/SIGTERM is a flag, a second acts as without it."""

import os
import signal
import threading

import pytest

from seqjax.train.interrupt import TrainingStopped, stop_on_signals


def test_a_first_signal_sets_the_flag_a_second_acts_at_once_and_handlers_come_back():
    # Python's own SIGINT handler, whatever this worker process had set before.
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        with stop_on_signals() as stop:
            assert stop(0) is None
            os.kill(os.getpid(), signal.SIGINT)
            assert stop(1) == signal.SIGINT
            with pytest.raises(KeyboardInterrupt):  # the handler from before, again
                os.kill(os.getpid(), signal.SIGINT)
        assert {s: signal.getsignal(s) for s in before} == before
    finally:
        signal.signal(signal.SIGINT, outer)


def test_outside_the_main_thread_nothing_is_installed():
    seen = []

    def body():
        with stop_on_signals() as stop:
            seen.append((stop(0), signal.getsignal(signal.SIGTERM)))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [(None, signal.getsignal(signal.SIGTERM))]


def test_the_stop_names_the_signal_and_exits_as_a_shell_reports_it():
    stopped = TrainingStopped(signal.SIGTERM, "at step 40, in epoch 4", 3)
    assert str(stopped) == "stopped by SIGTERM at step 40, in epoch 4 (epoch 3 saved)"
    assert stopped.exit_code == 143
    assert "no checkpoint saved yet" in str(TrainingStopped(signal.SIGINT, "during epoch 1", None))
    stopped.run_dir = "runs/a"
    assert str(stopped).endswith(
        "; continue with: seqjax train --config runs/a/config.yaml --run-dir runs/a --resume"
    )
