"""Train the trust model with its shipped config (configs/trust.yaml) and print its test
metrics; `seqjax train --config trust` with the same arguments.

python experiments/train_trust.py [--set train.epochs=5 ...] [--run-dir DIR]
"""

from __future__ import annotations

import sys

from seqjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "--config", "trust", *sys.argv[1:]]))
