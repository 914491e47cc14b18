"""Watching a training child process: Stop and Cancel by request, then by signal; what its exit means.

Every run the app trains is a child process (child.py for one device, torchrun for several: launcher.py),
watched by the job runner's thread through `watch`. Stop and Cancel are requests in the registry that the
child obeys at its next step; a Cancel not obeyed within `CANCEL_GRACE` seconds (a rank stuck in a
collective, a step that never ends) ends the child with SIGTERM, and with SIGKILL when that is not obeyed
either within `KILL_GRACE`. The app closing ends its children the same way.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..registry import ENDS_AT_ONCE, PRUNE
from ..run_states import RunStatus

CANCEL_GRACE = 30.0  # seconds a Cancel may take before the child is ended by force
KILL_GRACE = 10.0  # seconds the child may take to end after that SIGTERM before it is killed (SIGKILL)


class Child(Protocol):
    """What `watch` needs of a child: subprocess.Popen and multiprocessing.Process, adapted (child.py, launcher.py)."""

    def wait_for(self, timeout: float) -> bool: ...  # True once it has exited

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


def watch(child: Child, registry, run_id: str, log: Callable[[str], None],
          closing: threading.Event | None = None) -> bool:
    """Wait for the child to exit, ending it by force after an unobeyed Cancel (or when `closing` is set).
    Returns True when it was asked to end (Cancel, or the app closing) and the outcome is that request's."""
    asked = terminated = None
    while not child.wait_for(1.0):  # returns as soon as the child exits
        if asked is None and (registry.stop_requested(run_id) in ENDS_AT_ONCE or (closing and closing.is_set())):
            asked = time.monotonic()
        if asked is None:
            continue
        grace = 0.0 if closing and closing.is_set() else CANCEL_GRACE
        if terminated is None and time.monotonic() - asked > grace:
            log(f"cancel not obeyed within {CANCEL_GRACE:g} s: ending the training process (SIGTERM)"
                if grace else "the app is closing: ending the training process (SIGTERM)")
            child.terminate()
            terminated = time.monotonic()
        elif terminated is not None and time.monotonic() - terminated > KILL_GRACE:
            # A child that ignores SIGTERM too would hold the device's worker for ever.
            log(f"the training process did not end within {KILL_GRACE:g} s of SIGTERM: killing it")
            child.kill()
            terminated = math.inf  # killed: nothing more to send
    return asked is not None


def discarded_status(registry, run_id: str) -> str:
    """How a run that ended at once, keeping nothing, is recorded: `pruned` when a search asked for it (it
    wrote why in the run's info first), else `cancelled`."""
    return str(RunStatus.PRUNED if registry.stop_requested(run_id) == PRUNE else RunStatus.CANCELLED)


def exit_sentence(code: int) -> str:
    """What an exit code says, in words: a signal by name (SIGKILL most often means the kernel's out-of-memory
    killer), or the code."""
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        why = (" (the kernel's out-of-memory killer does this when the machine runs out of memory: lower "
               "batch_size or max_seq_length, or close other programs)") if -code == signal.SIGKILL else ""
        return f"the training process was killed by {name}{why}"
    return f"the training process ended with exit code {code} before it recorded how the run ended"


def die_with_parent(signal_number: int = signal.SIGTERM) -> None:
    """In a child: a signal (SIGTERM) when the thread that started it ends (Linux), so that an app killed
    mid-run leaves no training behind (torchrun passes the signal on to its ranks)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal_number))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
