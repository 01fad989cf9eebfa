import subprocess
import sys


def test_import_loads_no_framework():
    code = (
        "import sys, ganbench, ganbench.cli, ganbench.data, ganbench.archs, ganbench.init, ganbench.checkpoint,"
        " ganbench.plot, ganbench.figures;"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
