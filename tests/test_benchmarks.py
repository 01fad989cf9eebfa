"""Smoke tests of the scripts kept under benchmarks/: each run as a user runs it (a fresh process,
from the repository root), as small as its options allow, its JSON read back and checked. They
time nothing: a refactor that breaks a script fails here instead of at the next measurement.
(export_speed.py's smoke test is in test_export.py, beside the exports it times.)"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
TIMEOUT_S = 600


def run_script(name: str, *args, env_dir=None) -> str:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)], cwd=ROOT, text=True,
                          capture_output=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_every_kept_script_has_a_smoke_test():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")}
    here = Path(__file__).read_text() + (ROOT / "tests" / "test_export.py").read_text()
    assert scripts and all(f'"{name}"' in here or f"benchmarks/{name}" in here for name in scripts), scripts


def test_reference_loops(tmp_path, data_dir):
    out = tmp_path / "loops.json"
    run_script("reference_loops.py", "--steps", 1, "--warmup", 0, "--data-dir", data_dir, "--out", out)
    rows = json.loads(out.read_text())["rows"]
    assert {r["backend"] for r in rows} == {"torch", "tf"}
    assert all(r["median_step_s"] > 0 and r["ganbench_median_step_s"] > 0 for r in rows)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_conv_layers(tmp_path, data_dir, backend):
    out = tmp_path / "conv.json"
    run_script("conv_layers.py", "--preset", "dcgan", "--backend", backend, "--repeats", 1, "--data-dir", data_dir,
               "--out", out)
    result = json.loads(out.read_text())
    assert result["backend"] == backend and result["rows"]
    assert all(r["forward_ms"] > 0 and r["backward_ms"] > 0 for r in result["rows"])


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_profile_step(tmp_path, data_dir, backend):
    out = tmp_path / "profile.json"
    run_script("profile_step.py", "--preset", "dcgan", "--backend", backend, "--steps", 1, "--warmup", 0,
               "--data-dir", data_dir, "--out", out)
    result = json.loads(out.read_text())
    assert result["median_step_s"] > 0 and result["op_self_s_per_step"]


def test_distributed(tmp_path):
    out = tmp_path / "distributed.json"
    run_script("distributed.py", "--presets", "dcgan", "--backends", "torch", "--steps", 1, "--warmup", 0,
               "--out", out)
    rows = json.loads(out.read_text())["rows"]
    assert sorted(r["nproc"] for r in rows) == [1, 1, 2, 2]
    assert all(r["median_step_s"] > 0 for r in rows)


def test_eval_table(tmp_path, data_dir, quick_classifier):
    import ganbench

    run = tmp_path / "run"
    ganbench.train("dcgan", run, steps=2, batch_size=16, checkpoint_every=2, sample_every=2,
                   data_dir=data_dir, progress=False)
    out = tmp_path / "table.json"
    stdout = run_script("eval_table.py", run, "--n", 500, "--data-dir", data_dir, "--out", out)
    rows = json.loads(out.read_text())
    assert [r["source"].split(":")[0] for r in rows] == ["real", "dcgan, torch, 2 steps"]
    assert rows[0]["metrics"]["fid"] < rows[1]["metrics"]["fid"]  # real data beats a 2-step generator
    assert "| mnist |" in stdout


def test_quality_recipes(tmp_path, data_dir, quick_classifier):
    """Two steps of one recipe per backend instead of a budget, every checkpoint scored."""
    out = tmp_path / "quality.json"
    stdout = run_script("quality_recipes.py", "--recipes", "sngan_cpu", "--seeds", 0, "--steps", 2,
                        "--checkpoint-every", 1, "--curve", "--n", 300, "--data-dir", data_dir,
                        "--runs-dir", tmp_path / "runs", "--out", out)
    result = json.loads(out.read_text())
    assert [(r["backend"], r["steps"], [p["step"] for p in r["curve"]]) for r in result["runs"]] == [
        ("torch", 2, [1, 2]), ("tf", 2, [1, 2])]
    assert all(r["final"]["fid"] > 0 and r["cpu_minutes"] > 0 and r["config"]["model"] == "sngan_cnn"
               and r["config"]["batch_size"] == 8 for r in result["runs"])
    assert [row["median_fid"] for row in result["summary"]] == [r["final"]["fid"] for r in result["runs"]]
    assert result["machine"]["cpu"] and "| sngan_cpu | mnist | torch | 0 | 2 |" in stdout


def test_render_results_check_passes_on_the_recorded_files():
    """Every generated table of the pages matches its JSON, every figure was drawn from the JSON
    as it is now (and, with the matplotlib that drew them, is byte for byte a fresh drawing)."""
    pytest.importorskip("matplotlib")
    stdout = run_script("render_results.py", "--check")
    assert "stale" not in stdout


def render_results_module():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import render_results
    finally:
        sys.path.remove(str(BENCHMARKS))
    return render_results


def test_render_results_rewrites_a_stale_table_and_flags_a_redrawn_source(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    render = render_results_module()
    page = "text\n<!-- generated: sample-quality -->\n| an old | table |\n<!-- end generated -->\nmore\n"
    rendered = render.render_page(page, "page.md")
    assert "| an old |" not in rendered and rendered.startswith("text\n") and rendered.endswith("more\n")
    assert "| mnist | real: 10000 training images | 2.51 |" in rendered  # from eval_table.json
    manifest = json.loads(render.MANIFEST.read_text())
    stem = "benchmarks/results/img_per_s-cpu-defaults"
    manifest["figures"][stem]["sources"]["benchmarks/results/bench-cpu-defaults.json"] = "0" * 64
    monkeypatch.setattr(render, "MANIFEST", tmp_path / "figures.json")
    render.MANIFEST.write_text(json.dumps(manifest))
    assert render.check(render.figure_jobs(), None) == [f"{stem} (its JSON changed since it was drawn)"]


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.sh")))
def test_shell_scripts_parse_and_call_what_exists(script):
    """The run scripts take 10 minutes to hours (or a GPU), too long for CI: bash parses each, and
    every benchmarks/*.py it calls exists (a retired experiment's call would fail here)."""
    path = BENCHMARKS / script
    subprocess.run(["bash", "-n", str(path)], check=True, timeout=30)
    called = re.findall(r"benchmarks/(\w+\.py)", path.read_text())
    assert all((BENCHMARKS / name).exists() for name in called), called


def test_compare_bench(tmp_path):
    """Two sides of two runs each: the fastest median per side, the ratio and the spreads."""
    def bench(name, steps):
        rows = [{"preset": "dcgan", "backend": b, "mode": "eager", "precision": "fp32", "median_step_s": s}
                for b, s in zip(("torch", "tf"), steps)]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"machine": {"cpu": "x"}, "rows": rows + [{"preset": "dcgan", "error": "x"}]}))
        return path
    a = [bench("a1", (0.20, 0.40)), bench("a2", (0.22, 0.44))]
    b = [bench("b1", (0.25, 0.40)), bench("b2", (0.21, 0.41))]
    out = tmp_path / "compare.json"
    stdout = run_script("compare_bench.py", "--a", *a, "--b", *b, "--out", out)
    rows = {r["backend"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["torch"]["ratio"] == pytest.approx(0.20 / 0.21)
    assert rows["tf"]["ratio"] == pytest.approx(1.0)
    assert rows["torch"]["b_spread"] == pytest.approx(0.25 / 0.21)
    assert "dcgan" in stdout
