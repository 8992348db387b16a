"""plot.py — gnuplot plots (SVG and PNG) of comparisons and timelines.
Writes the data (.dat) and the script (.gp) next to the images so a plot
can be redrawn or restyled by hand.
"""
import os
import shutil
import subprocess

from migperf.util import MiB


def available():
    return shutil.which("gnuplot") is not None


def _terminals():
    """(terminal, extension) pairs: SVG, and PNG (cairo if present)."""
    out = subprocess.run(["gnuplot", "-e", "set terminal"],
                         capture_output=True, text=True)
    text = out.stdout + out.stderr
    png = "pngcairo" if "pngcairo" in text else "png"
    return [("svg size 800,480 dynamic background rgb 'white'", "svg"),
            ("%s size 800,480" % png, "png")]


def _run(base, body):
    """Renders `body` (plot commands) to base.svg and base.png."""
    script = []
    for term, ext in _terminals():
        script += ["set terminal %s" % term,
                   "set output '%s.%s'" % (base, ext), body, "unset output"]
    with open(base + ".gp", "w") as f:
        f.write("\n".join(script) + "\n")
    res = subprocess.run(["gnuplot", base + ".gp"], capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise RuntimeError("gnuplot %s.gp: %s" % (base, res.stderr.strip()))
    return [base + ".svg", base + ".png"]


def _q(text):
    return str(text).replace("'", "").replace("_", "\\\\_")


def points(base, title, xname, xlabels, series, ylabel):
    """A setting on x (categories), one line per series with min-max bars.
    series: {name: [(median, min, max) or None per x]}."""
    with open(base + ".dat", "w") as f:
        for name, vals in series.items():
            f.write("# %s\n" % name)
            for i, v in enumerate(vals):
                if v is not None:
                    f.write("%d %g %g %g \"%s\"\n" % (i, v[0], v[1], v[2],
                                                      xlabels[i]))
            f.write("\n\n")
    plots = ["'%s.dat' index %d using 1:2:3:4:xtic(5) with yerrorlines "
             "lw 2 pt 7 title '%s'" % (base, i, _q(name))
             for i, name in enumerate(series)]
    body = "\n".join([
        "set title '%s'" % _q(title), "set xlabel '%s'" % _q(xname),
        "set ylabel '%s'" % _q(ylabel), "set grid ytics",
        "set key outside top center horizontal",
        "set xrange [-0.5:%g]" % (len(xlabels) - 0.5), "set yrange [0:*]",
        "plot " + ", \\\n  ".join(plots)])
    return _run(base, body)


def timeline(base, title, samples):
    """One run over time: measured throughput and dirty rate (MB/s), guest
    progress (MB/s) on y1; remaining bytes (MiB) on y2."""
    with open(base + ".dat", "w") as f:
        f.write("# t_s wire_MBps remaining_MiB dirty_MBps guest_MBps "
                "iterations\n")
        for s in samples:
            guest = (s.get("guest") or {}).get("rate_bps")
            f.write("%.3f %s %.2f %.2f %s %d\n" % (
                s["t"], "%.2f" % (s["measured_mbps"] / 8)
                if s.get("measured_mbps") is not None else "NaN",
                s["remaining"] / MiB, s["dirty_rate_bps"] / 1e6,
                "%.2f" % (guest / 1e6) if guest is not None else "NaN",
                s["iterations"]))
    body = "\n".join([
        "set title '%s'" % _q(title), "set xlabel 'time since migrate (s)'",
        "set ylabel 'MB/s'", "set y2label 'remaining (MiB)'",
        "set ytics nomirror", "set y2tics", "set grid",
        "set yrange [0:*]", "set y2range [0:*]",
        "set key outside bottom center horizontal",
        "plot '{0}.dat' using 1:2 with steps lw 2 title 'throughput', \\\n"
        "  '{0}.dat' using 1:4 with steps lw 2 title 'dirty rate', \\\n"
        "  '{0}.dat' using 1:5 with lines lw 2 title 'guest progress', \\\n"
        "  '{0}.dat' using 1:3 axes x1y2 with lines lw 2 dt 2 "
        "title 'remaining'".format(base)])
    return _run(base, body)


def relpaths(paths, start):
    return [os.path.relpath(p, start) for p in paths]
