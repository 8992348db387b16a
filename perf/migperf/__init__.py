"""migperf — the migration performance test driver (docs/migperf.md).

Drives migd (or QEMU `-M none`) source and destination processes over QMP
only, the way QEMU's guestperf drives QEMU: configures a guest workload and
a migration scenario, migrates, samples query-migrate, the guest's progress
and the host CPU of every process and thread, and writes a JSON report, a
human summary, comparison tables and gnuplot plots. Python 3 stdlib only.
"""
VERSION = "1.0"
