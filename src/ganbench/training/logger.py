"""Run logging: a JSONL file of scalars (the record of truth) mirrored to TensorBoard."""

import json
import time
from pathlib import Path

LOG_FILE = "log.jsonl"
TB_DIR = "tb"


def truncate_log(path: Path, last_step: int) -> None:
    """On resume, drop records written after the checkpoint we resume from."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= last_step]
    path.write_text("".join(line + "\n" for line in kept))


class RunLogger:
    def __init__(self, run_dir: Path, start_step: int, tensorboard: bool = True):
        self.path = Path(run_dir) / LOG_FILE
        truncate_log(self.path, start_step)
        self.file = self.path.open("a")
        self.writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / TB_DIR), purge_step=start_step or None)

    def log(self, step: int, scalars: dict) -> None:
        record = {"step": step, "time": round(time.time(), 3), **scalars}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
