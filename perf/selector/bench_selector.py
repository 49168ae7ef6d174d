#!/usr/bin/env python3
"""bench_selector.py — hybrid mode's learning selector against every fixed
setting, with hde-estimate's model (migration time = per round
max(encode or decode CPU / workers, wire bits / link rate)).

    perf/selector/bench_selector.py [--build build] [--rates 10,100,1000,10000,100000]
                                    [--schedule 1000:30%,50:40%,1000] [--runs 1] TRACE...

For each trace: every fixed setting once (datacenter raw, lz4:4, lz4:1;
internet zstd:1, 3, 6) with all rates and the schedule modelled in the same
run, then hybrid once per rate (its choices depend on the rate) and once on
the schedule (the link changes during the replay, and the selector sees it).
Prints, per rate, the best fixed setting in hindsight and hybrid's time, and
hybrid / best (>= 0.95 is the goal) and hybrid against every fixed setting on
the schedule (>= 1.10 the goal). --runs N repeats every run and keeps the
median (timings are CPU time of the thread; a busy machine still moves them).
"""
import argparse
import json
import statistics
import subprocess
import sys

FIXED = [("datacenter", "raw"), ("datacenter", "lz4:4"), ("datacenter", "lz4:1"),
         ("internet", "zstd:1"), ("internet", "zstd:3"), ("internet", "zstd:6")]


def estimate(build, trace, mode, codec, rates, schedule):
    cmd = [f"{build}/tools/estimate/hde-estimate", "--mode", mode, "--link-mbps", rates, "--json", "-q"]
    if codec:
        cmd += ["--codec", codec]
    if schedule:
        cmd += ["--link-schedule", schedule]
    out = subprocess.run(cmd + [trace], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--rates", default="10,100,1000,10000,100000")
    ap.add_argument("--schedule", default="1000:30%,50:40%,1000")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json", help="write all figures here")
    ap.add_argument("traces", nargs="+")
    a = ap.parse_args()
    rates = [float(r) for r in a.rates.split(",")]
    allres = {}
    ok = True
    for trace in a.traces:
        fixed = {}
        for mode, codec in FIXED:
            ds = [estimate(a.build, trace, mode, codec, a.rates, a.schedule) for _ in range(a.runs)]
            fixed[f"{mode} {codec}"] = {
                "rates": {r: statistics.median(l["seconds"] for d in ds for l in d["links"] if l["link_mbps"] == r)
                          for r in rates},
                "schedule": statistics.median(d["link_schedule"]["seconds"] for d in ds)}
        hybrid = {}
        for r in rates:
            ts = [estimate(a.build, trace, "hybrid", None, f"{r:g}", None)["links"][0]["seconds"]
                  for _ in range(a.runs)]
            hybrid[r] = statistics.median(ts)
        hs = [estimate(a.build, trace, "hybrid", None, f"{rates[0]:g}", a.schedule)["link_schedule"]["seconds"]
              for _ in range(a.runs)]
        hybrid_sched = statistics.median(hs)
        print(f"\n{trace}")
        print(f"{'link Mbit/s':>12} {'best fixed':>18} {'time s':>9} {'hybrid s':>9} {'best/hybrid':>11}")
        rows = []
        for r in rates:
            name, t = min(((n, f["rates"][r]) for n, f in fixed.items()), key=lambda x: x[1])
            q = t / hybrid[r]
            ok = ok and q >= 0.95
            rows.append({"mbps": r, "best_fixed": name, "best_s": t, "hybrid_s": hybrid[r], "ratio": q})
            print(f"{r:>12g} {name:>18} {t:>9.3f} {hybrid[r]:>9.3f} {q:>11.3f}{'' if q >= 0.95 else '  MISS'}")
        print(f"schedule {a.schedule}: hybrid {hybrid_sched:.3f} s")
        sched_rows = []
        for n, f in sorted(fixed.items(), key=lambda x: x[1]["schedule"]):
            q = f["schedule"] / hybrid_sched
            ok = ok and q >= 1.10
            sched_rows.append({"fixed": n, "fixed_s": f["schedule"], "ratio": q})
            print(f"  vs {n:>18}: {f['schedule']:.3f} s, fixed/hybrid {q:.3f}{'' if q >= 1.10 else '  MISS'}")
        allres[trace] = {"rates": rows, "schedule": a.schedule, "hybrid_schedule_s": hybrid_sched,
                         "schedule_vs_fixed": sched_rows}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(allres, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
