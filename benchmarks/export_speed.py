"""Images per second of an exported generator in onnxruntime against ganbench's own sampling in each
backend (G in eval mode, then to_uint8), at batch 1 and 64, from one checkpoint, in one process.

    python benchmarks/export_speed.py --checkpoint runs/dcgan-mnist-torch --out benchmarks/results/export_speed.json

Each row: the median seconds of `--repeats` calls after `--warmup` untimed ones, the same z every
call; ganbench's rows include the numpy -> tensor -> numpy copies a caller pays (its
Generator.sample path), onnxruntime's its session.run. Prints a Markdown table; writes JSON with
the machine, the versions and the settings.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import ganbench.backends.tf  # noqa: F401  (TensorFlow before torch's optimisers load Triton)

import ganbench
from ganbench.bench.measure import machine, median_seconds
from ganbench.images import to_uint8
from ganbench.sampling import sample_labels, sample_noise

BATCHES = (1, 64)


def rows(checkpoint, repeats: int, warmup: int) -> list:
    import onnxruntime

    with tempfile.TemporaryDirectory() as tmp:
        model = ganbench.export(checkpoint, "onnx", Path(tmp) / "onnx")
        session = onnxruntime.InferenceSession(str(model))
        generators = {backend: ganbench.load_generator(checkpoint, backend=backend, precision="fp32")
                      for backend in ("torch", "tf")}
        spec = generators["torch"].spec
        out = []
        for batch in BATCHES:
            z, labels = sample_noise(spec, batch, 0, 0), sample_labels(spec, batch)
            feed = {"z": z} if labels is None else {"z": z, "labels": labels}
            calls = {f"ganbench sample ({backend})": (lambda g=g: to_uint8(g.gan.generate(z, labels=labels)))
                     for backend, g in generators.items()}
            calls["onnxruntime (exported)"] = lambda: session.run(["images"], feed)
            for name, call in calls.items():
                seconds = median_seconds(call, repeats, warmup)
                out.append({"runner": name, "batch": batch, "median_s": seconds, "img_per_s": batch / seconds})
    return out


def versions() -> dict:
    import onnxruntime
    import tensorflow as tf
    import torch

    return {"torch": torch.__version__, "tensorflow": tf.__version__, "onnxruntime": onnxruntime.__version__}


def table(result: dict) -> str:
    lines = ["| runner | batch | median ms | img/s |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['runner']} | {r['batch']} | {r['median_s'] * 1000:.2f} | {r['img_per_s']:.0f} |"
              for r in result["rows"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint or run directory")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per row; default 50")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls first; default 5")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args(argv)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "versions": versions(),
              "checkpoint": str(args.checkpoint), "repeats": args.repeats, "warmup": args.warmup,
              "modes": "torch eager, tf graph (tf.function, no XLA): each backend's default",
              "rows": rows(args.checkpoint, args.repeats, args.warmup)}
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
