"""ganbench command line: one subcommand per task. Bad input: one stderr line, exit code 2."""

import argparse
import math
import os
import sys
from pathlib import Path

from ganbench import __version__
from ganbench.archs import ARCHS
from ganbench.config import BEST_METRICS, EPS_FORMS, LOSSES, MODES, UPDATES, TrainConfig
from ganbench.data import DATASETS
from ganbench.precision import PRECISIONS
from ganbench.presets import preset_names
from ganbench.errors import GanbenchError, TrainingDiverged, TrainingStopped

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump), exit code 2."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def non_negative_int(text: str) -> int:
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or positive, got {value}")
    return value


def positive_int(text: str) -> int:
    value = integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {value}")
    return value


def add_data_options(p) -> None:
    """--data-dir and --no-download, the same on every command that reads a dataset."""
    p.add_argument("--data-dir", help="dataset root holding mnist/, fashion-mnist/, cifar10/, stl10/; default "
                   "$GANBENCH_DATA, else ~/.cache/ganbench/data (MNIST is built in; other datasets are "
                   "downloaded there on first use)")
    p.add_argument("--no-download", action="store_true", help="never download: fail with one line if the dataset "
                   "is missing (also: GANBENCH_NO_DOWNLOAD=1)")


def add_train(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a GAN",
        description="Train a GAN. The run directory receives config.json, log.jsonl, TensorBoard "
        "events (tb/), sample grids (samples/) and safetensors checkpoints (checkpoints/).",
    )
    # Options default to None so that --resume can tell what the user set explicitly.
    p.add_argument("--preset", help=f"start from a recipe ({', '.join(preset_names())}) or a .json file of "
                   "config fields; options given here override it")
    p.add_argument("--model", help=f"architecture ({', '.join(ARCHS)}); default {d.model}")
    p.add_argument("--dataset", help=f"{', '.join(DATASETS)} or folder (with --image-dir); default {d.dataset}")
    p.add_argument("--image-dir", help="the image folder (PNG/JPEG, searched recursively) of --dataset folder")
    p.add_argument("--image-size", type=positive_int, help="model resolution; default: the model's only size "
                   "(dcgan 32, dcgan_pytorch_example 64, dcgan_tf_tutorial 28), else 48 for stl10 and 32 otherwise")
    p.add_argument("--channels", type=positive_int, help="1 or 3; default: the dataset's (folder: 1 if all images are grayscale)")
    p.add_argument("--width", type=positive_float, help=f"channel multiplier of sngan/wgan_gp models, e.g. 0.25 on a CPU; default {d.width}")
    p.add_argument("--backend", help=f"torch or tf; default {d.backend}")
    p.add_argument("--mode", help="eager, graph (tf only), compiled (torch.compile / XLA) or cudagraphs (torch "
                   "on a CUDA GPU: torch.compile's reduce-overhead mode); default: torch eager, tf graph "
                   "(tf.function without XLA), the faster mode of each on the CPU")
    p.add_argument("--precision", choices=PRECISIONS, help="fp32, bf16 or fp16: what convolutions and dense layers compute in, "
                   "their results flowing on in it as under torch.autocast (weights, optimiser state, "
                   "BatchNorm statistics and losses stay float32; fp16 adds dynamic loss scaling); "
                   "--resume may change it; default fp32")
    p.add_argument("--loss", help=f"{', '.join(LOSSES)}; default {d.loss}")
    p.add_argument("--update", help=f"{' | '.join(f'{k}: {v}' for k, v in UPDATES.items())}; default {d.update}")
    p.add_argument("--gp-lambda", type=positive_float, help=f"WGAN-GP penalty weight; default {d.gp_lambda}")
    p.add_argument("--steps", type=positive_int, help=f"total generator updates; default {d.steps}")
    p.add_argument("--batch-size", type=positive_int, help=f"images per D update; default {d.batch_size}")
    p.add_argument("--batch-size-g", type=non_negative_int, help="images per G update, from fresh noise; "
                   "0: G reuses the last D update's fakes (pytorch/examples dcgan); default 0")
    p.add_argument("--lr", type=positive_float, help=f"Adam learning rate of G and D; default {d.lr_g}")
    p.add_argument("--lr-g", type=positive_float, help="G's learning rate (overrides --lr)")
    p.add_argument("--lr-d", type=positive_float, help="D's learning rate (overrides --lr)")
    p.add_argument("--beta1", type=float, help=f"Adam beta1; default {d.beta1}")
    p.add_argument("--beta2", type=float, help=f"Adam beta2; default {d.beta2}")
    p.add_argument("--adam-eps", dest="eps", type=positive_float, help=f"Adam epsilon; default {d.eps}")
    p.add_argument("--adam-eps-form", dest="eps_form", help=f"{' | '.join(f'{k}: {v}' for k, v in EPS_FORMS.items())}; "
                   f"default {d.eps_form}")
    p.add_argument("--lr-decay", help=f"none, or linear (to 0 at the last step); default {d.lr_decay}")
    p.add_argument("--n-dis", type=positive_int, help=f"D updates per G update; default {d.n_dis}")
    p.add_argument("--seed", type=non_negative_int, help=f"seeds init, data order and noise; default {d.seed}")
    p.add_argument("--ema-decay", type=float, help="keep an exponential moving average of G's weights and buffers "
                   f"with this decay (e.g. 0.9999), used by sample and eval; 0: none; default {d.ema_decay}")
    p.add_argument("--ema-start", type=non_negative_int, help="G updates during which the average copies G; "
                   f"default {d.ema_start}")
    p.add_argument("--ortho-reg", type=float, help="BigGAN's orthogonal regularisation of G's weight matrices "
                   "(off-diagonal form, e.g. 1e-4; the shared class embedding is exempt); default 0: off")
    p.add_argument("--r1", type=float, metavar="GAMMA", help="R1: the zero-centred gradient penalty on reals, "
                   "gamma / 2 * E|grad_x D(x)|^2 added to D's loss (Mescheder et al. 2018); default 0: off")
    p.add_argument("--r2", type=float, metavar="GAMMA", help="R2: the same penalty on fakes; default 0: off")
    p.add_argument("--reg-every", type=positive_int, metavar="K", help="lazy R1/R2: only every K-th G step's D "
                   "updates, with gamma * K (StyleGAN2); default 1")
    p.add_argument("--lecam", type=float, metavar="W", help="LeCam regularisation (Tseng et al. 2021) of weight W "
                   "in D's loss, against moving averages of D's outputs on reals and fakes; default 0: off")
    p.add_argument("--lecam-decay", type=float, help="the decay of those moving averages; default 0.99")
    p.add_argument("--cr", type=float, metavar="W", help="balanced consistency regularisation (bCR, Zhao et al. "
                   "2021) of weight W: W * mean (D(x) - D(T(x)))^2 on reals and on fakes in D's loss, T a keyed "
                   "translation of up to 1/8 of the size (StudioGAN uses 10); default 0: off")
    p.add_argument("--data-limit", type=float, metavar="N", help="train on a keyed subset of the training set: N "
                   "images (as many of each class as can be), or a fraction such as 0.1; recorded in config.json; "
                   "default 0: all")
    p.add_argument("--diffaugment", metavar="POLICY", help="DiffAugment (Zhao et al. 2020) of every image D sees, "
                   "reals and fakes, in D's and G's updates: a comma-separated list of color, translation, cutout "
                   "(keyed: both backends draw the same augmentations); default none")
    p.add_argument("--hflip", action=argparse.BooleanOptionalAction, help="flip each real image horizontally "
                   "with probability 1/2 (keyed: both backends flip the same images); --no-hflip turns a preset's "
                   "off; default off")
    p.add_argument("--sample-every", type=positive_int, help=f"write a 8x8 sample grid every N steps; default {d.sample_every}")
    p.add_argument("--log-every", type=positive_int, help=f"log losses and img/s (log.jsonl, TensorBoard) every N steps; "
                   f"default {d.log_every}")
    p.add_argument("--checkpoint-every", type=positive_int, help=f"checkpoint every N steps; default {d.checkpoint_every}")
    p.add_argument("--keep-checkpoints", type=positive_int, help=f"newest checkpoints kept; default {d.keep_checkpoints}")
    p.add_argument("--eval-every", type=non_negative_int, help="evaluate every N steps with the dataset's classifier (0: never); default 0")
    p.add_argument("--best-metric", help="with --eval-every: checkpoints/best names the checkpoint with the best "
                   f"value of this metric so far, never pruned (choose from {', '.join(BEST_METRICS)}); sample, "
                   "eval and export take RUN/best; default fid, intra_fid for a class-conditional model")
    p.add_argument("--eval-n", type=positive_int, help=f"samples per periodic evaluation; default {d.eval_n}")
    p.add_argument("--out", type=Path, help="run directory; default runs/<model>-<dataset>-<backend>")
    add_data_options(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out (default: as above) from its "
                   "newest valid checkpoint, with the same recipe; --steps may only grow")
    p.add_argument("--time-limit", type=positive_float, metavar="MINUTES", help="stop before this much wall-clock "
                   "time has passed, after a checkpoint, with exit code 0 (--resume continues); default none. "
                   "SIGTERM and Ctrl-C stop the same way after the current step (exit 143, 130)")
    p.add_argument("--nproc", type=positive_int, help="train data-parallel in N processes on this machine "
                   "(torch: torchrun's launcher, gloo on the CPU, NCCL on GPUs; tf: MultiWorkerMirroredStrategy); "
                   "--batch-size stays the global batch, split evenly; the same run as one process. Several "
                   "machines: start the workers with torchrun or TF_CONFIG instead; default 1")
    p.add_argument("--devices", type=positive_int, help="tf: replicas in this process, one per local GPU (or "
                   "logical CPU devices on a CPU), by tf.distribute.MirroredStrategy; the batch splits over "
                   "processes x devices; torch runs one device per process (use --nproc); default 1")
    p.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, help="BatchNorm over the global batch "
                   "across processes (the same computation as one process); --no-sync-bn: per-process statistics, "
                   "as DistributedDataParallel without SyncBatchNorm; default on")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


# TrainConfig fields set by the train options of the same name (None: not given).
OPTION_FIELDS = ("model", "dataset", "image_dir", "image_size", "channels", "width", "backend", "mode", "loss",
                 "update", "gp_lambda", "steps", "batch_size", "batch_size_g", "lr_g", "lr_d", "beta1", "beta2", "eps", "eps_form", "lr_decay",
                 "n_dis", "seed", "sample_every", "log_every", "checkpoint_every", "keep_checkpoints", "eval_every", "eval_n", "best_metric",
                 "ema_decay", "ema_start", "hflip", "ortho_reg", "r1", "r2", "reg_every", "lecam", "lecam_decay", "cr", "data_limit", "diffaugment", "precision", "sync_bn", "devices")


def option_changes(args) -> dict:
    """The TrainConfig fields the user gave as options."""
    changes = {"lr_g": args.lr, "lr_d": args.lr} if args.lr is not None else {}
    changes.update({field: getattr(args, field) for field in OPTION_FIELDS if getattr(args, field) is not None})
    return changes


def cmd_train(args) -> int:
    from ganbench.api import resolve
    from ganbench.distributed import World, check_divides, current_world
    from ganbench.launch import launch
    from ganbench.training import loop

    if args.resume and args.preset:
        raise GanbenchError("--resume continues the run's saved config; drop --preset")
    config, out = resolve(args.preset, args.out, args.resume, **option_changes(args))
    world = current_world(config.backend)
    if args.nproc and args.nproc > 1 and not world.distributed:
        check_divides(config, World(size=args.nproc))  # refused here, before any process starts
        return launch(args.argv, args.nproc, config.backend)
    if args.nproc and args.nproc != world.size:
        raise GanbenchError(f"--nproc {args.nproc} in a world of {world.size} processes (set by torchrun or "
                            "TF_CONFIG): drop --nproc")
    time_limit_s = None if args.time_limit is None else args.time_limit * 60
    last = loop.train(config, out, resume=args.resume, data_dir=args.data_dir, progress=not args.no_progress,
                      time_limit_s=time_limit_s)
    if world.is_main:
        print(f"done: {config.steps} steps; checkpoint {last}; samples in {out / loop.SAMPLES_DIR}")
    return 0


def add_generator_options(p) -> None:
    """How a checkpoint's generator samples (sample and eval)."""
    p.add_argument("--truncation", type=positive_float, default=0.0, metavar="T", help="the truncation trick: "
                   "noise elements outside [-T, T] are redrawn (keyed, so both backends draw the same); default none")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even when the checkpoint holds "
                   "its moving average (G_ema, which is used by default)")
    p.add_argument("--precision", choices=PRECISIONS, help="what G's convolutions and dense layers compute in; "
                   "default: the precision the checkpoint trained in")
    p.add_argument("--standing-stats", type=non_negative_int, default=0, metavar="N",
                   help="BigGAN's standing statistics: BatchNorm uses the average statistics of N training-mode "
                   "batches of the generator (the run's batch size) instead of its running averages; default 0: off")


def add_sample(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="write a PNG grid of samples from a checkpoint",
        description="Sample a checkpoint with either backend (whichever wrote it) into a PNG grid: --n samples "
        "(of one class with --class), one row per class (--classes), or a latent interpolation (--interpolate).",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="a .safetensors checkpoint, or a run directory (uses its latest)")
    p.add_argument("--backend", help="torch or tf; default: the backend that trained the checkpoint")
    p.add_argument("--n", type=positive_int, help="number of samples; with --classes, per class; with "
                   "--interpolate, frames; default 64 (--classes: 10, --interpolate: 10)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed; default 0")
    p.add_argument("--class", dest="label", type=non_negative_int, help="a conditional model: every sample of this class")
    p.add_argument("--classes", action="store_true", help="a conditional model: one row per class")
    p.add_argument("--interpolate", action="store_true", help="a strip (.png) or animation (.gif) of G along the "
                   "spherical path between two latent points")
    add_generator_options(p)
    p.add_argument("--out", type=Path, help="output .png (or .gif with --interpolate); default sample.png, "
                   "classes.png or interpolation.png beside the checkpoint (in the run directory when given one)")
    p.set_defaults(func=cmd_sample)


def cmd_sample(args) -> int:
    from ganbench import sampling
    from ganbench.backends import get_backend
    from ganbench.images import save_gif, save_grid

    if args.classes and (args.interpolate or args.label is not None):
        raise GanbenchError("--classes draws every class: it takes neither --class nor --interpolate")
    name = "classes.png" if args.classes else "interpolation.png" if args.interpolate else "sample.png"
    out = args.out or beside(args.checkpoint, name)
    suffixes = (".png", ".gif") if args.interpolate else (".png",)
    if out.suffix.lower() not in suffixes:
        raise GanbenchError(f"--out must name a {' or '.join(suffixes)} file, got {out}")
    if args.backend is not None:
        get_backend(args.backend)  # validate the name before loading anything
    generator = sampling.load_generator(args.checkpoint, args.backend, not args.no_ema, args.standing_stats,
                                        args.precision)
    if args.classes:
        per_class = args.n or 10
        path = save_grid(generator.sample_classes(per_class, args.seed, args.truncation), out, ncols=per_class)
    elif args.interpolate:
        frames = generator.interpolate(args.n or 10, args.seed, args.label, args.truncation)
        path = save_gif(frames, out) if out.suffix.lower() == ".gif" else save_grid(frames, out, ncols=len(frames))
    else:
        path = save_grid(generator.sample(args.n or 64, args.seed, args.label, args.truncation), out)
    print(f"wrote {path}")
    return 0


def add_data(sub) -> None:
    p = sub.add_parser("data", help="dataset tools", description="Dataset tools.")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    dl = dsub.add_parser(
        "download",
        help="download a dataset, or the Inception weights, with checksum checks",
        description="Download a dataset from its canonical mirror into <data-dir>/<name>/, "
        "verifying each file by md5 (or the sha256 of its payload) and writing it atomically; or, with "
        "'inception', torch-fidelity's Inception-v3 weights into <cache>/inception/, sha256-checked.",
    )
    dl.add_argument("dataset", help="mnist, fashion-mnist, cifar10 (162 MB) or stl10 (2.5 GB); archives are "
                    "md5-checked, extracted and deleted. Or inception: the weights of --features inception")
    dl.add_argument("--data-dir", help="dataset root; default $GANBENCH_DATA, else ~/.cache/ganbench/data")
    dl.add_argument("--base-url", help="mirror (a folder URL) to use instead of the canonical one")
    dl.set_defaults(func=cmd_download)


def cmd_download(args) -> int:
    if args.dataset == "inception":
        from ganbench.metrics.inception import download_weights

        if args.data_dir:
            raise GanbenchError("the Inception weights go to the cache ($GANBENCH_CACHE), not --data-dir")
        print(f"ready: {download_weights(base_url=args.base_url)}")
        return 0
    from ganbench.data.download import download

    print(f"ready: {download(args.dataset, args.data_dir, args.base_url)}")
    return 0


def add_classifier(sub) -> None:
    p = sub.add_parser("classifier", help="domain classifiers for the offline metrics",
                       description="Domain classifiers: the feature space of the MNIST-family metrics.")
    csub = p.add_subparsers(dest="classifier_command", required=True, parser_class=Parser)
    t = csub.add_parser(
        "train",
        help="train the classifier of a dataset",
        description="Train the small CNN of a dataset deterministically on its training split and save it "
        "as <cache>/classifiers/<dataset>.safetensors, one file whose header holds the JSON metadata (test accuracy, "
        "data hash); <cache> is $GANBENCH_CACHE or ~/.cache/ganbench.",
    )
    t.add_argument("--dataset", required=True, help="mnist or fashion-mnist")
    add_data_options(t)
    t.add_argument("--epochs", type=positive_int, help="training epochs; default 3 (mnist) or 6 (fashion-mnist)")
    t.add_argument("--seed", type=non_negative_int, default=0, help="seed of the init and the data order; default 0")
    t.add_argument("--train-images", type=positive_int, metavar="N", help="train on the first N training images "
                   "only: a quick classifier to try the metrics with, which will fall below the required accuracy "
                   "(exit code 1); default all")
    t.set_defaults(func=cmd_classifier_train)


def cmd_classifier_train(args) -> int:
    from ganbench.data import get_dataset
    from ganbench.metrics.classifier import classifier_path, train_classifier

    get_dataset(args.dataset)
    meta = train_classifier(args.dataset, args.data_dir, args.seed, args.epochs, subset=args.train_images)
    verdict = "meets" if meta["test_accuracy"] >= meta["required_accuracy"] else "is BELOW"
    print(f"{args.dataset} classifier: test accuracy {meta['test_accuracy']:.2%} ({verdict} the required "
          f"{meta['required_accuracy']:.1%}); saved to {classifier_path(args.dataset)}")
    return 0 if verdict == "meets" else 1


def add_eval(sub) -> None:
    from ganbench.metrics.evaluate import METRICS

    p = sub.add_parser(
        "eval",
        help="measure sample quality",
        description="Measure a checkpoint's samples (or any uint8 images) against a real split, in the feature "
        "space of the dataset's classifier. Prints a table and writes JSON with the full protocol.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="a checkpoint, or a run directory (its latest)")
    source.add_argument("--images", type=Path, help="an .npz of uint8 NHWC images, or a folder of PNGs")
    p.add_argument("--dataset", help="dataset of the classifier and reference; default: the checkpoint's")
    p.add_argument("--backend", help="backend that generates the samples; default: the one that trained it")
    p.add_argument("--n", type=positive_int, default=10000, help="number of samples; default 10000")
    p.add_argument("--metrics", default=",".join(METRICS), help=f"comma-separated subset of {','.join(METRICS)}")
    p.add_argument("--ref", default="test", choices=("test", "train"), help="real split to compare with; default test")
    p.add_argument("--features", default="classifier", choices=("classifier", "inception"),
                   help="feature space: the dataset's classifier (offline), or Inception-v3 via torch-fidelity; default classifier")
    p.add_argument("--inception-weights", type=Path,
                   help="Inception weights file (sha256-checked); default <cache>/inception/weights-inception-2015-12-05-6726825d.pth")
    p.add_argument("--download", action="store_true", help="--features inception: fetch the weights "
                   "(sha256-checked) first when they are missing, as `ganbench data download inception` does")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed of the samples; default 0")
    add_generator_options(p)
    add_data_options(p)
    p.add_argument("--out", type=Path, help="JSON result path; default eval.json beside the checkpoint or images")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from ganbench.metrics import evaluate as ev

    metrics = ev.parse_metrics(args.metrics)
    if args.checkpoint is not None:
        from ganbench.sampling import load_generator

        generator = load_generator(args.checkpoint, args.backend, not args.no_ema, args.standing_stats,
                                   args.precision)
        dataset = args.dataset or generator.config.dataset
        source = {"checkpoint": str(args.checkpoint), "step": generator.step, "backend": generator.backend,
                  "seed": args.seed, "generator": generator.name, "truncation": args.truncation,
                  "precision": generator.config.precision,
                  "standing_stats": args.standing_stats}
    elif args.truncation or args.standing_stats or args.no_ema or args.precision:
        raise GanbenchError("--truncation, --standing-stats, --no-ema and --precision choose how a --checkpoint samples; "
                            "--images are already drawn")
    elif not args.dataset:
        raise GanbenchError("--images needs --dataset (the classifier and reference to use)")
    else:
        dataset, source = args.dataset, {"images": str(args.images)}
    if args.checkpoint is None:  # bad images are named before the classifier is looked for
        images, labels = ev.load_images(args.images), None
    extractor = ev.feature_extractor(args.features, dataset, args.inception_weights, args.download)  # before sampling
    if args.checkpoint is not None:
        images, labels = ev.generated_images(generator.gan, generator.spec, args.n, args.seed, args.truncation)
    result = ev.evaluate(images, dataset, args.n, args.ref, metrics, args.data_dir, extractor, labels)
    result["source"] = source
    out = args.out or beside(args.checkpoint if args.checkpoint is not None else args.images, "eval.json")
    ev.write_result(result, out)
    for name, value in result["metrics"].items():
        print(f"{name:>10}  {value:.6g}")
    print(f"protocol: N={args.n}, reference {result['protocol']['reference']}, {result['protocol']['features']}")
    print(f"wrote {out}")
    return 0


def beside(origin: Path, name: str) -> Path:
    """`name` in the folder `origin` names, or in the folder holding the file it names."""
    return (origin if origin.is_dir() else origin.parent) / name


def add_export(sub) -> None:
    from ganbench.exporter import BUILDERS, FORMATS

    p = sub.add_parser(
        "export",
        help="write a generator file that runs without ganbench (ONNX, TorchScript, SavedModel)",
        description="Export a checkpoint's generator (either backend's) into a new folder: the model file "
        "(generator.onnx, generator.pt or the SavedModel folder generator/), a model card (README.md, Hugging Face "
        "style) and sample.png. Input z float32 [N, z_dim] (and labels int64 [N] for a conditional model), N "
        "dynamic; output uint8 [N, C, H, W], the pixels `ganbench sample` writes for the same z. Draw z from "
        "N(0, 1); for the truncation trick redraw the elements outside [-t, t].",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="a .safetensors checkpoint, or a run directory (its latest)")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="onnx (onnxruntime; pip install "
                   "'ganbench[export]'), torchscript (torch.jit.load) or savedmodel (tf.saved_model.load)")
    p.add_argument("--onnx-from", default="torch", choices=list(BUILDERS), help="--format onnx: the exporter, "
                   "torch.onnx or tf2onnx (both give the same images); default torch")
    p.add_argument("--out", type=Path, help="a new or empty folder; default <run>/export-<format>")
    p.add_argument("--no-ema", action="store_true", help="the raw generator, even when the checkpoint holds G_ema")
    p.add_argument("--rgb", action="store_true", help="repeat a one-channel output to three channels (for "
                   "Inception-based tools such as torch-fidelity)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from ganbench.exporter import export

    path = export(args.checkpoint, args.format, args.out, not args.no_ema, args.rgb, args.onnx_from)
    print(f"wrote {path} (model card and samples beside it)")
    return 0


def add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="compare the backends' training speed like for like",
        description="Time ganbench's training step for every (preset, backend, mode, batch size), each in a fresh "
        "process, from the same init, data order and noise in both backends, with a breakdown of the step and "
        "the rate against the framework's own large matmul. Writes bench.json, report.md and a PNG to --out. "
        "The defaults take about 8 minutes on 2 CPU cores.",
    )
    p.add_argument("--presets", default="dcgan,dcgan_pytorch_example,dcgan_tf_tutorial",
                   help=f"comma-separated presets ({', '.join(preset_names())}); "
                   "default dcgan,dcgan_pytorch_example,dcgan_tf_tutorial")
    p.add_argument("--backends", default="torch,tf", help="comma-separated backends; default torch,tf")
    p.add_argument("--modes", help="comma-separated modes (graph is tf only, cudagraphs torch on a GPU only); "
                   "default eager,graph,compiled "
                   "(with --quality: each backend's default, torch eager and tf graph)")
    p.add_argument("--batch-sizes", default="0", help="comma-separated batch sizes; default 0: each preset's own "
                   "(64, or 256 for dcgan_tf_tutorial)")
    p.add_argument("--width", type=positive_float, help="channel multiplier of the presets' models (e.g. "
                   "--presets biggan_cifar10 --width 0.25 on a CPU); default: each preset's")
    p.add_argument("--precisions", default="fp32", help="comma-separated precisions (fp32, bf16, fp16), each a row "
                   "of its own with the matmul rate in that precision; default fp32")
    p.add_argument("--steps", type=positive_int, default=8, help="timed steps per configuration; default 8")
    p.add_argument("--warmup", type=positive_int, default=2, help="untimed steps first; default 2")
    p.add_argument("--timeout", type=positive_int, default=900, help="seconds allowed per configuration; default 900 "
                   "(--quality allows the budget plus an hour)")
    p.add_argument("--quality", action="store_true", help="instead of timing steps, train each (preset, backend, "
                   "mode) for --minutes from the same init and plot the classifier FD against training seconds "
                   "(needs the dataset's classifier: ganbench classifier train); writes quality.json, quality.md "
                   "and quality-<preset>.png")
    p.add_argument("--minutes", type=positive_float, default=2.0, help="--quality: training budget per run; default 2")
    p.add_argument("--evals", type=positive_int, default=6, help="--quality: scores per run after the one at 0 s; default 6")
    p.add_argument("--eval-n", type=positive_int, default=2000, help="--quality: samples per score; default 2000")
    add_data_options(p)
    p.add_argument("--out", type=Path, default=Path("bench"), help="output directory (new or empty); default bench")
    p.set_defaults(func=cmd_bench)


def comma_list(text: str, known, what: str) -> list:
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        if item not in known:
            raise GanbenchError(f"unknown {what} {item!r} (choose from {', '.join(known)})")
    if not items:
        raise GanbenchError(f"no {what} given")
    return items


def cmd_bench(args) -> int:
    from ganbench.backends import BACKENDS
    from ganbench.bench.report import combinations, run, run_quality

    presets = comma_list(args.presets.replace("-", "_"), preset_names(), "preset")
    backends = comma_list(args.backends, BACKENDS, "backend")
    default_modes = "default" if args.quality else "eager,graph,compiled"
    modes = comma_list(args.modes or default_modes, MODES, "mode")
    if not combinations(presets, backends, modes):
        raise GanbenchError(f"no mode among {', '.join(modes)} runs in {', '.join(backends)} "
                            "(graph is tf only, cudagraphs torch only)")
    if args.quality:
        result = run_quality(presets, backends, modes, args.minutes, args.evals, args.eval_n, args.out, args.data_dir,
                             args.minutes * 60 + 3600)
        print((args.out / "quality.md").read_text())
        return 1 if any("error" in r for r in result["runs"]) else 0
    try:
        batches = [non_negative_int(b) for b in args.batch_sizes.split(",")]
    except argparse.ArgumentTypeError as exc:
        raise GanbenchError(f"--batch-sizes: {exc}") from None
    precisions = comma_list(args.precisions, PRECISIONS, "precision")
    result = run(presets, backends, modes, batches, args.steps, args.warmup, args.out, args.data_dir, args.timeout,
                 args.width or 0.0, precisions)
    print((args.out / "report.md").read_text())
    failed = [r for r in result["rows"] if "error" in r]
    return 1 if failed else 0


def add_plot(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="compare runs' curves in one figure",
        description="Draw the curves of one or more runs from their log.jsonl, one line per run labelled by its "
        "backend, mode and precision: the losses (smoothed, raw values faint), img/s and every eval/<metric> "
        "(KID and the score with their spread shaded), against steps or training seconds. Needs matplotlib "
        "(pip install 'ganbench[plot]').",
    )
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories (as written by train)")
    p.add_argument("--out", type=Path, required=True, help="the figure: a .png or .svg file")
    p.add_argument("--x", default="steps", choices=("steps", "seconds"), help="x axis: G steps, or the wall-clock "
                   "seconds the run has trained (summed across resumes); default steps")
    p.add_argument("--metrics", help="comma-separated subset of what the runs log (e.g. d_loss,g_loss,eval/fid); "
                   "default: all")
    p.add_argument("--smoothing", type=float, default=0.6, help="TensorBoard-style smoothing weight of the losses, "
                   "in [0, 1); default 0.6")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args) -> int:
    from ganbench.plot import plot_runs

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    print(f"wrote {plot_runs(args.runs, args.out, args.x, metrics, args.smoothing)}")
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
    add_classifier(sub)
    add_eval(sub)
    add_export(sub)
    add_bench(sub)
    add_plot(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `train --nproc` runs in each worker
    if getattr(args, "no_download", False):
        os.environ["GANBENCH_NO_DOWNLOAD"] = "1"  # read by the data layer, here and in bench's processes
    try:
        return args.func(args)
    except TrainingDiverged as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except GanbenchError as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingStopped as exc:
        if str(exc):  # empty from a data-parallel run's ranks other than 0
            print(f"ganbench: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a failed read or write (full disk, permissions): what and which file
        where = f" {exc.filename}" if exc.filename else ""
        print(f"ganbench: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("ganbench: interrupted", file=sys.stderr)
        return 130
