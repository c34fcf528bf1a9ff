"""Run `flame ARGS...` in this process, then print its peak resident set size in MiB (ru_maxrss)."""

import resource
import sys

from pipeline.cli import main

code = main(sys.argv[1:])
print(f"peak_rss_mib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
sys.exit(code)
