"""python3 -m migperf (with perf/ on sys.path): the migperf command."""
import os
import sys

# `python3 perf/migperf ...` puts perf/migperf first on sys.path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from migperf.cli import main

sys.exit(main(sys.argv[1:]))
