"""ganbench command line: one subcommand per task. Bad input: one stderr line, exit code 2."""

import argparse
import sys
from pathlib import Path

from ganbench import __version__
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError, TrainingDiverged

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump), exit code 2."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_train(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a GAN",
        description="Train a GAN. The run directory receives config.json, log.jsonl, TensorBoard "
        "events (tb/), sample grids (samples/) and safetensors checkpoints (checkpoints/).",
    )
    # Options default to None so that --resume can tell what the user set explicitly.
    p.add_argument("--model", help=f"architecture (dcgan); default {d.model}")
    p.add_argument("--dataset", help=f"mnist or fashion-mnist; default {d.dataset}")
    p.add_argument("--backend", help=f"torch or tf; default {d.backend}")
    p.add_argument("--steps", type=positive_int, help=f"total generator updates; default {d.steps}")
    p.add_argument("--batch-size", type=positive_int, help=f"images per batch; default {d.batch_size}")
    p.add_argument("--lr", type=positive_float, help=f"Adam learning rate of G and D; default {d.lr_g}")
    p.add_argument("--n-dis", type=positive_int, help=f"D updates per G update; default {d.n_dis}")
    p.add_argument("--seed", type=int, help=f"seeds init, data order and noise; default {d.seed}")
    p.add_argument("--sample-every", type=positive_int, help=f"write a 8x8 sample grid every N steps; default {d.sample_every}")
    p.add_argument("--checkpoint-every", type=positive_int, help=f"checkpoint every N steps; default {d.checkpoint_every}")
    p.add_argument("--keep-checkpoints", type=positive_int, help=f"newest checkpoints kept; default {d.keep_checkpoints}")
    p.add_argument("--out", type=Path, help="run directory; default runs/<model>-<dataset>-<backend>")
    p.add_argument("--data-dir", help="dataset root (holds mnist/, fashion-mnist/); default $GANBENCH_DATA or ./data")
    p.add_argument("--download", action="store_true", help="download the dataset first if it is missing")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


OPTION_FIELDS = {
    "model": "model", "dataset": "dataset", "backend": "backend", "steps": "steps",
    "batch_size": "batch_size", "n_dis": "n_dis", "seed": "seed", "sample_every": "sample_every",
    "checkpoint_every": "checkpoint_every", "keep_checkpoints": "keep_checkpoints",
}
# What --resume may change: how long and how often, and the backend (checkpoints are portable).
RESUME_MAY_CHANGE = {"steps", "sample_every", "checkpoint_every", "keep_checkpoints", "backend"}


def config_from_args(args, base: TrainConfig) -> TrainConfig:
    changes = {field: getattr(args, opt) for opt, field in OPTION_FIELDS.items() if getattr(args, opt) is not None}
    if args.lr is not None:
        changes["lr_g"] = changes["lr_d"] = args.lr
    return base.replace(**changes), changes


def cmd_train(args) -> int:
    from ganbench.training import loop

    if args.resume:
        if args.out is None:
            raise GanbenchError("--resume needs --out, the run directory to continue")
        saved = loop.saved_config(args.out)
        config, changes = config_from_args(args, saved)
        clashes = sorted(k for k, v in changes.items() if k not in RESUME_MAY_CHANGE and getattr(saved, k) != v)
        if clashes:
            raise GanbenchError(f"--resume cannot change {', '.join(clashes)} of the run in {args.out}")
    else:
        config, _ = config_from_args(args, TrainConfig())
    config.validate()
    out = args.out or Path("runs") / f"{config.model}-{config.dataset}-{config.backend}"
    if args.download:
        from ganbench.data.download import download

        download(config.dataset, args.data_dir)
    last = loop.train(config, out, resume=args.resume, data_dir=args.data_dir, progress=not args.no_progress)
    print(f"done: {config.steps} steps; checkpoint {last}; samples in {out / loop.SAMPLES_DIR}")
    return 0


def add_sample(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="write a PNG grid of samples from a checkpoint",
        description="Sample a checkpoint with either backend (whichever wrote it) into a PNG grid.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="a .safetensors checkpoint, or a run directory (uses its latest)")
    p.add_argument("--backend", default="torch", help="torch or tf; default torch")
    p.add_argument("--n", type=positive_int, default=64, help="number of samples; default 64")
    p.add_argument("--seed", type=int, default=0, help="noise seed; default 0")
    p.add_argument("--out", type=Path, default=Path("grid.png"), help="output PNG path; default grid.png")
    p.set_defaults(func=cmd_sample)


def cmd_sample(args) -> int:
    from ganbench.backends import get_backend
    from ganbench.sampling import sample_grid

    if args.out.suffix.lower() != ".png":
        raise GanbenchError(f"--out must name a .png file, got {args.out}")
    get_backend(args.backend)  # validate the name before loading anything
    path = sample_grid(args.checkpoint, args.backend, args.n, args.seed, args.out)
    print(f"wrote {path}")
    return 0


def add_data(sub) -> None:
    p = sub.add_parser("data", help="dataset tools", description="Dataset tools.")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    dl = dsub.add_parser(
        "download",
        help="download a dataset with checksum checks",
        description="Download a dataset from its canonical mirror into <data-dir>/<name>/, "
        "verifying each file by md5 (or the sha256 of its payload) and writing it atomically.",
    )
    dl.add_argument("dataset", help="mnist or fashion-mnist")
    dl.add_argument("--data-dir", help="dataset root; default $GANBENCH_DATA or ./data")
    dl.add_argument("--base-url", help="mirror to use instead of the canonical one")
    dl.set_defaults(func=cmd_download)


def cmd_download(args) -> int:
    from ganbench.data.download import download

    print(f"ready: {download(args.dataset, args.data_dir, args.base_url)}")
    return 0


def build_parser() -> Parser:
    parser = Parser(
        prog="ganbench",
        description="Train, sample and evaluate GANs with identical PyTorch and TensorFlow backends.",
    )
    parser.add_argument("--version", action="version", version=f"ganbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_train(sub)
    add_sample(sub)
    add_data(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TrainingDiverged as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except GanbenchError as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("ganbench: interrupted", file=sys.stderr)
        return 130
