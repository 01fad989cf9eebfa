"""Two versions of ganbench's step, timed by `ganbench bench` in one sitting: the speed of B against A
per configuration. Prints a table and writes JSON.

    PYTHONPATH=/path/to/old/src ganbench bench --out a1      # A: the old code (a clone, on the path)
    ganbench bench --out b1                                  # B: this checkout
    ganbench bench --out b2; PYTHONPATH=... ganbench bench --out a2   # again, in the other order
    python benchmarks/compare_bench.py --a a1/bench.json a2/bench.json --b b1/bench.json b2/bench.json \\
        --out benchmarks/results/compare.json

On a shared VM a configuration's median step drifts by 5-10% between runs minutes apart, more than
most code changes move it. Each side's figure is therefore the fastest of its runs' medians (the
run least disturbed), and a ratio counts only where the runs of each side agree with each other:
`spread` is each side's slowest median over its fastest. ratio = A's step / B's step (above 1: B
is faster).
"""

import argparse
import json
from pathlib import Path


def medians(paths: list) -> dict:
    """{(preset, backend, mode, precision): [median step of each run]} over the bench.json files."""
    out = {}
    for path in paths:
        for row in json.loads(Path(path).read_text())["rows"]:
            if "median_step_s" in row:
                key = (row["preset"], row["backend"], row["mode"], row.get("precision", "fp32"))
                out.setdefault(key, []).append(row["median_step_s"])
    return out


def compare(a_paths: list, b_paths: list) -> list:
    a, b = medians(a_paths), medians(b_paths)
    rows = []
    for key in (k for k in a if k in b):
        rows.append({"preset": key[0], "backend": key[1], "mode": key[2], "precision": key[3],
                     "a_median_steps_s": a[key], "b_median_steps_s": b[key],
                     "a_spread": max(a[key]) / min(a[key]), "b_spread": max(b[key]) / min(b[key]),
                     "ratio": min(a[key]) / min(b[key])})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", nargs="+", required=True, help="bench.json files of version A")
    parser.add_argument("--b", nargs="+", required=True, help="bench.json files of version B")
    parser.add_argument("--out", type=Path, default=Path("compare_bench.json"))
    args = parser.parse_args()
    rows = compare(args.a, args.b)
    print(f"{'preset':24} {'backend':7} {'mode':9} {'prec':5} {'A best (s)':>10} {'B best (s)':>10} "
          f"{'A spread':>8} {'B spread':>8} {'A/B':>6}")
    for r in rows:
        print(f"{r['preset']:24} {r['backend']:7} {r['mode']:9} {r['precision']:5} {min(r['a_median_steps_s']):10.4f} "
              f"{min(r['b_median_steps_s']):10.4f} {r['a_spread']:8.3f} {r['b_spread']:8.3f} {r['ratio']:6.3f}")
    machines = [json.loads(Path(p).read_text()).get("machine") for p in args.a + args.b]
    args.out.write_text(json.dumps({"a": args.a, "b": args.b, "machines": machines, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
