"""One replica of the data-parallel tests (tests/test_distributed.py), run as a script under
torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or TF_CONFIG:

    python tests/distributed_worker.py BACKEND CASE DTYPE STEPS SYNC_BN OUT [NAN_RANK [DEVICES]]

Trains STEPS steps of CASE (distributed_cases.CASES) on this replica's rows of the global inputs;
rank 0 writes the final state to OUT (safetensors, distributed_cases.flat). NAN_RANK: that replica's
real images are NaN; a non-finite loss ends the process as `ganbench train` ends (one line, exit 3).
DEVICES: replicas in this process (tf: MirroredStrategy over logical CPU devices)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from distributed_cases import run_case  # noqa: E402

from ganbench.distributed import current_world  # noqa: E402
from ganbench.errors import TrainingDiverged  # noqa: E402

if __name__ == "__main__":
    backend, case, dtype, steps, sync_bn, out = sys.argv[1:7]
    nan_rank = int(sys.argv[7]) if len(sys.argv) > 7 else -1
    devices = int(sys.argv[8]) if len(sys.argv) > 8 else 1
    try:
        run_case(backend, case, dtype, int(steps), sync_bn == "1", current_world(backend), out, nan_rank, devices)
    except TrainingDiverged as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
