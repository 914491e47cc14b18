"""Loaded at start-up by every Python process the tests start (this folder is on their PYTHONPATH):
installs the tests' offline rule (offline_guard.py), then runs the sitecustomize this one shadows, if any."""

import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
try:
    import offline_guard

    offline_guard.install()
finally:
    sys.path.remove(_HERE)

_others = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
_spec = importlib.machinery.PathFinder.find_spec("sitecustomize", _others)
if _spec is not None and _spec.loader is not None:
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
