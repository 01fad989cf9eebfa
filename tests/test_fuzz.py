"""The fuzz suite over every reader of a user file (tests/fuzz_readers.py), as CI runs it: 2,400
seeded mutations in a subprocess bounded by a timeout, with 0 tracebacks, 0 hangs, 0 damaged
files loaded as different ones and every case's peak memory within its budget."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FUZZER = Path(__file__).parent / "fuzz_readers.py"
READERS = {"checkpoint (.safetensors)", "checkpoint pointer (latest)", "run config.json", "log.jsonl", "preset (.json)",
           "best-checkpoint record (best)", "images (.npz)", "image folder (PNG)", "Inception weights (.pth)", "classifier (.safetensors)",
           "mnist t10k-images-idx3-ubyte", "mnist t10k-labels-idx1-ubyte.gz", "cifar10 test_batch.bin",
           "stl10 test_X.bin", "stl10 test_y.bin"}


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "fuzz.json"
    seed = os.environ.get("GANBENCH_FUZZ_SEED", "0")
    done = subprocess.run([sys.executable, str(FUZZER), "--cases", "2400", "--seed", seed, "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


def test_no_reader_fails_on_2400_mutated_files(summary):
    assert summary["cases"] == 2400
    assert (summary["tracebacks"], summary["timeouts"], summary["failures"]) == (0, 0, [])
    assert summary["max_seconds"] < summary["case_seconds_limit"]


def test_every_reader_is_fuzzed_and_refuses_damage(summary):
    assert set(summary["readers"]) == READERS
    for name, row in summary["readers"].items():
        assert row["cases"] >= 150 and row["refused"] > 0 and row["failures"] == 0, (name, row)
        assert row["max_memory_over_budget"] < 1, (name, row)


def test_a_case_reproduces_alone(summary, tmp_path):
    """The seed and case a failure prints are enough to run that case again, alone."""
    out = tmp_path / "one.json"
    done = subprocess.run([sys.executable, str(FUZZER), "--seed", str(summary["seed"]), "--case", "3", "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    one = json.loads(out.read_text())
    assert one["cases"] == 1 and list(one["readers"]) == ["run config.json"]  # readers in build_corpus order
