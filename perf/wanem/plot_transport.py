#!/usr/bin/env python3
"""plot_transport.py — table and plot of perf/wanem/bench_transport.sh's CSV.

  plot_transport.py RESULTS.csv [--table] [--png OUT.png]

--table prints two markdown tables on stdout: per link and transport (median
and range over the runs), then one row per run. A run is *disturbed* when
it started with the 1-minute load average at or above --max-load (default
1.0) or other heavy work (another session's gateways, tests, compilers) was
seen at its start or end (the CSV's `others`): such runs are listed, marked,
but left out of the medians and the plot (--keep-disturbed keeps them). --png draws,
per link profile, the share of the link rate carried as useful data
(HDE: the migration's frames, each counted once; TCP: payload bytes) for
HDE without FEC, with --fec auto and with a fixed group, TCP cubic and TCP
bbr, and beside it HDE's time to complete. The calibration runs (no rate
limit) are in the table only. matplotlib: Debian's python3-matplotlib.
"""
import argparse
import re
import csv
import sys

SERIES = [  # (system, variant prefix, label, colour)
    ("hde", "nofec", "HDE, no FEC", "#1f77b4"),
    ("hde", "fec-auto", "HDE, FEC auto", "#17becf"),
    ("hde", "fec-", "HDE, FEC fixed", "#9467bd"),
    ("tcp", "cubic", "TCP cubic", "#ff7f0e"),
    ("tcp", "bbr", "TCP bbr", "#2ca02c"),
]


def series_of(r):
    for i, (sysname, var, _, _) in enumerate(SERIES):
        if r["system"] == sysname and (r["variant"] == var or (var == "fec-" and r["variant"].startswith("fec-")
                                                            and r["variant"] != "fec-auto")):
            return i
    return None


def link(r):
    if r["rate_mbps"] == "unlimited":
        return "unlimited"
    s = f"{r['rate_mbps']} Mbit/s"
    if r["delay_ms"] not in ("", "0"):
        s += f", RTT {2 * float(r['delay_ms']):g} ms"
    if r["loss"] not in ("", "0"):
        s += f", loss {float(r['loss']) * 100:g} %"
    return s


def pct(v):
    return f"{float(v) * 100:.1f} %" if v not in ("", None) else ""


# Heavy work by others (not this benchmark's own gateways, emulator and the
# sha256sum of its images, whose names also show up in `others`).
FOREIGN = re.compile(r"qemu-system|cc1plus|(^|/)ninja$|(^|/)ld$|bench_micro|_test(\.sh)?$|gtest")


def disturbed(r, max_load):
    toks = r.get("others", "").replace("|", " ").split()
    return (r["load1"] != "" and float(r["load1"]) >= max_load) or any(FOREIGN.search(t) for t in toks)


def table(rows, max_load):
    print("| run | link | transport | time s | goodput Mbit/s | useful / rate | wire / rate | retransmits | "
          "spurious (% of frames) | FEC (K,M; parity %) | rebuilt by FEC | image | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        i = series_of(r)
        name = SERIES[i][2] if i is not None else f"{r['system']} {r['variant']}"
        if r["variant"].startswith("fec-") and r["variant"] != "fec-auto":
            name = f"HDE, FEC {r['variant'][4:]}"
        if r["system"] == "hde":
            rtx = r["retransmits"]
            spur = f"{r['spurious']} ({float(r['spurious_pct']):.3f} %)" if r["spurious_pct"] != "" else ""
            fec = f"{r['fec']}; {float(r['parity_pct']):.1f} %" if r["fec"] else ""
            if r["fec"] and r["parity_frames"] == "0":
                fec = "off all along"
            reb = r["fec_rebuilt"]
            img = "sha256 ok" if r["sha_ok"] == "yes" else "**wrong**"
        else:
            rtx = r["tcp_retrans"]
            spur = fec = reb = ""
            img = "—"
        if r["ok"] != "yes":
            img += f" **failed: {r['notes']}**"
        if disturbed(r, max_load):
            img += f" (disturbed: {r.get('others', '').strip(' |') or 'load'})"
        print(f"| {r['run'][:2]} | {link(r)} | {name} | {r['time_s']} | {r['goodput_mbps']} | {pct(r['util_goodput'])} | "
              f"{pct(r['util_wire'])} | {rtx} | {spur} | {fec} | {reb} | {img} | {r['load1']} |")


def med(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def groups(rows):
    """(profile, series) -> rows, in the order first seen; calibration runs included."""
    g = {}
    for r in rows:
        i = series_of(r)
        if i is None:
            continue
        key = (r["profile"], r["variant"] if r["system"] == "hde" else r["system"] + r["variant"])
        g.setdefault(key, []).append(r)
    return g


def summary(rows):
    print("| link | transport | runs | time s, median [min – max] | goodput Mbit/s | useful / rate | "
          "wire / rate | retransmits | spurious, worst (% of frames) | rebuilt by FEC | images ok | load at start |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (_, _), rs in groups(rows).items():
        r0 = rs[0]
        name = SERIES[series_of(r0)][2]
        if r0["variant"].startswith("fec-") and r0["variant"] != "fec-auto":
            name = f"HDE, FEC {r0['variant'][4:]}"
        ok = [r for r in rs if r["ok"] == "yes"]

        def col(key, fmt, scale=1.0, rng=False):
            xs = [float(r[key]) * scale for r in ok if r[key] != ""]
            if not xs:
                return ""
            m = fmt.format(med(xs))
            if rng and len(xs) > 1:
                m += f" [{fmt.format(min(xs))} – {fmt.format(max(xs))}]"
            return m
        hde = r0["system"] == "hde"
        spur = ""
        if hde:
            sp = [float(r["spurious_pct"]) for r in ok if r["spurious_pct"] != ""]
            spur = f"{max(sp):.3f} %" if sp else ""
        imgs = f"{sum(r['sha_ok'] == 'yes' for r in rs)}/{len(rs)}" if hde else f"{len(ok)}/{len(rs)} transfers ok"
        loads = [float(r["load1"]) for r in rs if r["load1"] != ""]
        print(f"| {link(r0)} | {name} | {len(rs)} | {col('time_s', '{:.1f}', rng=True)} | "
              f"{col('goodput_mbps', '{:.1f}', rng=True)} | {col('util_goodput', '{:.0f} %', 100, rng=True)} | "
              f"{col('util_wire', '{:.0f} %', 100)} | {col('retransmits' if hde else 'tcp_retrans', '{:.0f}')} | "
              f"{spur} | {col('fec_rebuilt', '{:.0f}') if r0['variant'].startswith('fec') else ''} | {imgs} | "
              f"{max(loads) if loads else ''} |")


def plot(rows, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = []
    for r in rows:
        if r["rate_mbps"] != "unlimited" and r["profile"] not in profiles:
            profiles.append(r["profile"])
    labels = {r["profile"]: link(r) for r in rows}
    util = {}  # (profile, series) -> [utilisation of each run]
    secs = {}
    for r in rows:
        i = series_of(r)
        if i is None or r["profile"] not in profiles or r["ok"] != "yes":
            continue
        if r["util_goodput"] != "":
            util.setdefault((r["profile"], i), []).append(float(r["util_goodput"]) * 100)
        if r["system"] == "hde" and r["time_s"] != "":
            secs.setdefault((r["profile"], i), []).append(float(r["time_s"]))

    def bars(ax, data, i, k, n, w, col, lab, fmt, off):
        keys = [p for p in profiles if (p, i) in data]
        xs = [profiles.index(p) + (k - (n - 1) / 2) * w for p in keys]
        ys = [med(data[(p, i)]) for p in keys]
        lo = [y - min(data[(p, i)]) for p, y in zip(keys, ys)]
        hi = [max(data[(p, i)]) - y for p, y in zip(keys, ys)]
        many = any(len(data[(p, i)]) > 1 for p in keys)
        b = ax.bar(xs, ys, w, label=lab, color=col, yerr=[lo, hi] if many else None, capsize=2,
                   error_kw={"elinewidth": 0.8, "ecolor": "black"})
        for bb, y, h in zip(b, ys, hi):
            ax.text(bb.get_x() + bb.get_width() / 2, y + h + off, fmt(y), ha="center", va="bottom", fontsize=7)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(15, 5.6), gridspec_kw={"width_ratios": [3, 2]})
    n = len(SERIES)
    for i, (_, _, lab, col) in enumerate(SERIES):
        bars(a1, util, i, i, n, 0.8 / n, col, lab, lambda y: f"{y:.0f}" if y >= 10 else f"{y:.1f}", 1)
    a1.set_xticks(range(len(profiles)))
    a1.set_xticklabels([labels[p].replace(", ", "\n") for p in profiles], fontsize=8)
    a1.set_ylabel("useful data / link rate (%)")
    a1.set_ylim(0, 125)
    a1.axhline(100, color="grey", lw=0.5)
    many = any(len(v) > 1 for v in util.values())
    a1.set_title("Useful data / link rate (HDE: migration frames counted once; TCP: payload)"
                 + ("\nmedian of the runs, bars: min – max" if many else ""), fontsize=10)
    a1.legend(fontsize=8, ncol=3, loc="upper right")

    hde = [i for i, s in enumerate(SERIES) if s[0] == "hde"]
    for j, i in enumerate(hde):
        bars(a2, secs, i, j, len(hde), 0.8 / len(hde), SERIES[i][3], SERIES[i][2], lambda y: f"{y:.1f}", 0.2)
    a2.set_xticks(range(len(profiles)))
    a2.set_xticklabels([labels[p].replace(", ", "\n") for p in profiles], fontsize=8)
    a2.set_ylabel("seconds")
    a2.set_title("HDE: time to migrate the trace (first frame to last ack)"
                 + ("\nmedian of the runs, bars: min – max" if many else ""), fontsize=10)
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"# plot: {png}", file=sys.stderr)


def plot_loss(rows, png):
    """Goodput against loss on 100 Mbit/s, RTT 40 ms (0, 1 and 5 %): HDE, BBR, CUBIC."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = {}  # series -> {loss %: [utilisation %]}
    for r in rows:
        if r["rate_mbps"] != "100" or r["delay_ms"] != "20" or r["ok"] != "yes" or r["util_goodput"] == "":
            continue
        i = series_of(r)
        if i is None:
            continue
        pts.setdefault(i, {}).setdefault(float(r["loss"] or 0) * 100, []).append(float(r["util_goodput"]) * 100)
    if not pts:
        print("# plot_loss: no 100 Mbit/s, RTT 40 ms runs", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for i, d in sorted(pts.items()):
        xs = sorted(d)
        ys = [med(d[x]) for x in xs]
        ax.plot(xs, ys, marker="o", label=SERIES[i][2], color=SERIES[i][3])
        for x in xs:
            ax.vlines(x, min(d[x]), max(d[x]), color=SERIES[i][3], lw=0.8)
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.0f}" if y >= 10 else f"{y:.1f}", (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color=SERIES[i][3])
    ax.plot([0, 5], [100, 95], ls=":", color="grey", label="link x (1 - loss)")
    ax.set_xlabel("random loss on the data direction (%)")
    ax.set_ylabel("useful data / link rate (%)")
    ax.set_ylim(0, 105)
    ax.set_title("100 Mbit/s, RTT 40 ms: goodput against loss (median, bars: min - max)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"# plot: {png}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv")
    p.add_argument("--table", action="store_true", help="print a markdown table on stdout")
    p.add_argument("--png", help="write the plot here")
    p.add_argument("--max-load", type=float, default=1.0, help="runs started at this load or above are disturbed")
    p.add_argument("--keep-disturbed", action="store_true", help="keep disturbed runs in the medians and the plot")
    a = p.parse_args()
    with open(a.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit("plot_transport.py: no rows in " + a.csv)
    quiet = rows if a.keep_disturbed else [r for r in rows if not disturbed(r, a.max_load)]
    if a.table:
        summary(quiet)
        out = [r["run"][:2] for r in rows if r not in quiet]
        if out:
            print(f"\nLeft out of the medians and the plot (disturbed): run{'s' if len(out) > 1 else ''} {', '.join(out)}.")
        print()
        table(rows, a.max_load)
    if a.png:
        plot(quiet, a.png)
        plot_loss(quiet, a.png[:-4] + "-loss.png" if a.png.endswith(".png") else a.png + "-loss.png")


if __name__ == "__main__":
    main()
