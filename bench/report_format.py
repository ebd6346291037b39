"""Number formats shared by bench/report.py and its sections: times, operation counts, speed-ups,
case names."""


def fmt_time(s):
    """Seconds with three significant digits in the largest unit that fits ("20.3 µs")."""
    if s is None:
        return "–"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale or unit == "ns":
            v = s / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"


def fmt_ops(n):
    """An operation count: "10^6" for a power of ten from 10^5 on, else "79,992"."""
    if n is None:
        return "–"
    if n >= 10**5 and str(n).rstrip("0") == "1":
        return f"10^{len(str(n)) - 1}"
    return f"{n:,}"


def faster(speedup):
    """A speed-up as "8.3× faster", or as "3.2× slower" below 1."""
    return f"{speedup:.1f}× faster" if speedup >= 1 else f"{1 / speedup:.1f}× slower"


def case_key(case):
    """Sort key of a peers case name, "rosen-10^4" or "det_minor-8": (problem, size)."""
    name, _, size = case.rpartition("-")
    return name, (10 ** int(size[3:]) if size.startswith("10^") else int(size))
