"""Run logging: a JSONL file of scalars (the record of truth) mirrored to TensorBoard."""

import json
import time
from pathlib import Path

from ganbench import validation
from ganbench.errors import GanbenchError
from ganbench.fileio import atomic_write, naming_errors

LOG_FILE = "log.jsonl"
TB_DIR = "tb"


def truncate_log(path: Path, last_step: int) -> float:
    """On resume, drop records written after the checkpoint we resume from.
    Returns the training seconds already logged (the last record's elapsed_s), or 0."""
    if not path.is_file():
        return 0.0
    kept = [record for record in read_log(path) if record["step"] <= last_step]
    atomic_write(path, "".join(json.dumps(record) + "\n" for record in kept).encode())
    return max((record.get("elapsed_s", 0.0) for record in kept), default=0.0)


def read_log(path: Path) -> list:
    """The records of a log.jsonl, each {"step": int >= 0, name: number, ...}. A line that is not
    JSON (torn by a crash or a full disk mid-write) is skipped; a JSON line that is not such a
    record, or a file that is not UTF-8 text, is refused naming the line."""
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise GanbenchError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise GanbenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue  # torn
        where = f"{path}, line {number}"
        validation.json_object(record, where, "a record")
        validation.integer(record.get("step"), where, "step")
        for name, value in record.items():
            if type(value) not in (int, float):  # NaN and inf are numbers too: a diverged step's losses
                raise GanbenchError(f"{where}: {validation.short(name)} must be a number, got "
                                    f"{validation.type_name(value)}")
        records.append(record)
    return records


class RunLogger:
    """Each record carries `time` (Unix seconds) and `elapsed_s`, the wall-clock seconds this run
    has spent since its first step, summed across resumes (for quality-versus-time curves)."""

    def __init__(self, run_dir: Path, start_step: int, tensorboard: bool = True):
        self.path = Path(run_dir) / LOG_FILE
        self.elapsed_before = truncate_log(self.path, start_step)
        self.started = time.perf_counter()
        self.file = self.path.open("a")
        self.writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / TB_DIR), purge_step=start_step or None)

    def log(self, step: int, scalars: dict) -> None:
        elapsed = self.elapsed_before + time.perf_counter() - self.started
        record = {"step": step, "time": round(time.time(), 3), "elapsed_s": round(elapsed, 3), **scalars}
        with naming_errors(self.path):  # a full disk
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
