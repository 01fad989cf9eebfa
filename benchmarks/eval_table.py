"""The README's quality table: real data and trained runs, one protocol, one extractor.

For each dataset: N (default 10,000) real training images (the yardstick's floor), then each run
directory given, sampled by the backend that trained it. Metrics against the test split, the
dataset's classifier features. Writes benchmarks/results/eval_table.json.

    python benchmarks/eval_table.py RUN_DIR [RUN_DIR ...] [--n 10000] [--data-dir DIR]
"""

import argparse
import json
from pathlib import Path

from ganbench import data
from ganbench.metrics import evaluate as ev
from ganbench.metrics.classifier import load_classifier
from ganbench.sampling import load_generator

COLUMNS = ("fid", "kid", "score", "coverage", "class_kl", "precision", "recall")


def rows_for(dataset: str, runs: list, n: int, data_dir) -> list:
    classifier = load_classifier(dataset)
    images, _ = data.load(dataset, "train", data_dir)
    rows = [{"dataset": dataset, "source": f"real: {n} training images",
             **ev.evaluate(images[-n:], dataset, n, "test", data_dir=data_dir, classifier=classifier)}]
    for run in runs:
        config = json.loads((run / "config.json").read_text())
        generator = load_generator(run, config["backend"])
        fake, labels = ev.generated_images(generator.gan, generator.spec, n, seed=0)
        result = ev.evaluate(fake, dataset, n, "test", data_dir=data_dir, classifier=classifier, labels=labels)
        rows.append({"dataset": dataset, "source": f"{config['model']}, {config['backend']}, {generator.step} steps",
                     **result})
    return rows


def markdown_table(rows: list) -> list:
    """The rows as a markdown table (KID raw, not x1000, with its spread over subsets)."""
    lines = ["| dataset | samples | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
    for row in rows:
        m = row["metrics"]
        values = [f"{m['fid']:.2f}", f"{m['kid']:.2f} ± {m['kid_std']:.2f}", f"{m['score']:.2f}", f"{m['coverage']:.1f}",
                  f"{m['class_kl']:.3f}", f"{m['precision']:.3f}", f"{m['recall']:.3f}"]
        lines.append(f"| {row['dataset']} | {row['source']} | " + " | ".join(values) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=10000, help="images per row; default 10000")
    parser.add_argument("--data-dir", help="the datasets' folder (default: $GANBENCH_DATA)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "eval_table.json")
    args = parser.parse_args()
    by_dataset = {}
    for run in args.runs:
        by_dataset.setdefault(json.loads((run / "config.json").read_text())["dataset"], []).append(run)
    rows = [row for dataset, runs in by_dataset.items() for row in rows_for(dataset, runs, args.n, args.data_dir)]
    ev.write_result(rows, args.out)
    print("\n".join(markdown_table(rows)))
    protocol = rows[0]["protocol"]
    print(f"\nProtocol: N={args.n} per row against the test split; each dataset's classifier, penultimate 256-d "
          f"features; resize: {protocol['resize']}; KID {protocol['kid']}; precision/recall {protocol['pr']}.")


if __name__ == "__main__":
    main()
