"""Run logging: a JSONL file of scalars (the record of truth) mirrored to TensorBoard."""

import json
import time
from pathlib import Path

from ganbench.fileio import atomic_write, naming_errors

LOG_FILE = "log.jsonl"
TB_DIR = "tb"


def truncate_log(path: Path, last_step: int) -> float:
    """On resume, drop records written after the checkpoint we resume from.
    Returns the training seconds already logged (the last record's elapsed_s), or 0."""
    if not path.is_file():
        return 0.0
    kept = [record for record in map(parse_record, path.read_text().splitlines())
            if record is not None and record["step"] <= last_step]
    atomic_write(path, "".join(json.dumps(record) + "\n" for record in kept).encode())
    return max((record.get("elapsed_s", 0.0) for record in kept), default=0.0)


def parse_record(line: str) -> dict | None:
    """A log line's record; None for a line torn by a crash or a full disk mid-write."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("step"), int) else None


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
