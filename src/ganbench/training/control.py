"""What ends a run early on request, and what keeps two processes out of one run directory."""

import os
import signal
import threading
from pathlib import Path

from ganbench.errors import GanbenchError

LOCK_FILE = ".lock"
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number, as shells report


class RunLock:
    """An exclusive flock on <run>/.lock while a process trains there. The kernel drops it when the
    process ends, however it ends (kill -9 included), so a dead run never blocks its resume."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.file = None

    def __enter__(self):
        import fcntl

        self.file = self.path.open("a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            raise GanbenchError(f"{self.path.parent} is in use by another ganbench process (pid {holder}); "
                                "wait for it or choose another --out") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()
        return self

    def __exit__(self, *exc):
        self.file.close()  # releases the lock; the file stays (removing it would race a waiting process)


class StopRequests:
    """While active, SIGTERM and SIGINT ask the loop to stop after the current step (`signal`
    names the first one); a second one takes its default action at once. Only the main thread can
    hold signal handlers: elsewhere this does nothing."""

    def __init__(self):
        self.signal = None
        self.saved = {}

    def _handle(self, signum, frame):
        if self.signal is not None:
            signal.signal(signum, signal.SIG_DFL)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)
        self.signal = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.saved = {sig: signal.signal(sig, self._handle) for sig in EXIT_CODES}
        return self

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
