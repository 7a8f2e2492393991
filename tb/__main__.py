"""`python -m tb`: the testbench CLI (see tb/cli.py)."""

import sys

from tb.cli import main

sys.exit(main())
