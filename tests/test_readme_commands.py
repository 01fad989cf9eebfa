"""The README's quick-start commands, run as written in a fresh shell one after another (each in a
new process, in an empty working directory), with only a small step count added: a command that
the README shows must work for a new user. The few that take minutes or a download are named in
SLOW with how they are covered instead; a test checks that list against the README."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TIMEOUT_S = 600  # any one command: a hang fails the test
# command prefix -> the arguments appended so that it runs in seconds (argparse: the last value wins)
SMALL = {  # the first prefix that matches serves
    "ganbench train --resume": ["--steps", "4", "--sample-every", "1000", "--no-progress"],
    "ganbench train --preset biggan_cpu": ["--steps", "2", "--batch-size", "8", "--sample-every", "1000"],
    "ganbench train": ["--steps", "2", "--sample-every", "1000", "--no-progress"],
    "ganbench eval": ["--n", "200"],
    "ganbench sample": [],
    "ganbench plot": [],
}
# commands not run here, and what covers them instead (docs/testing.md lists them with their last run)
SLOW = {
    "ganbench classifier train --dataset mnist": "3 minutes; test_fresh_interpreter trains one on 2000 images",
    "ganbench train --preset sngan_cifar10 --width 0.25 --steps 2000": "downloads CIFAR-10; its reader is tested on "
                                                                      "format-exact files (test_data)",
    "ganbench bench": "5-8 minutes; test_fresh_interpreter runs it at one step",
}


def quick_start_commands() -> list:
    """Every `ganbench ...` line of the Quick start's shell blocks, comments dropped, in order."""
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("ganbench ")]


def test_the_slow_list_names_readme_commands():
    assert set(SLOW) <= set(quick_start_commands())


def small(command: str) -> list:
    prefix = next(p for p in SMALL if command.startswith(p))
    return shlex.split(command) + SMALL[prefix]


def test_quick_start_commands_run_as_written(tmp_path, data_dir, quick_classifier):
    commands = [c for c in quick_start_commands() if c not in SLOW]
    assert len(commands) >= 10, commands
    if "fashion-mnist" not in {p.name for p in Path(data_dir).iterdir()}:
        pytest.skip(f"the README trains on Fashion-MNIST: put it in {data_dir}/fashion-mnist (the tests never download)")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "GANBENCH_NO_DOWNLOAD": "1"}
    for command in commands:
        done = subprocess.run(small(command), cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        assert done.returncode == 0 and "Traceback" not in done.stderr, f"{command}\n{done.stderr[-3000:]}"
    runs = tmp_path / "runs"
    assert (runs / "dcgan-mnist-torch" / "sample.png").is_file() and (tmp_path / "compare.png").is_file()
    assert {"dcgan-mnist-torch", "dcgan-mnist-tf", "dcgan-fashion-mnist-torch", "biggan-mnist-torch", "bf16"} <= \
        {p.name for p in runs.iterdir()}
