"""Work-arounds for bugs of the installed Qt binding, each applied only where it shows.

PySide6 6.12.0 (seen with CPython 3.11): ``SignalInstance.emit`` returns ``True`` without
taking a reference to it, so every emit from Python takes one reference from ``True``.
Before Python 3.12 ``True`` is not immortal: after a few thousand emits (a conversation
emits one per token) its count reaches zero and the interpreter aborts with "Fatal
Python error: bool_dealloc". ``install()`` measures whether emit loses a reference and,
only then, wraps it to give the reference back.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_PROBES = 64
_installed = False


class _Probe(QObject):
    signal = Signal()


def emit_loses_references() -> bool:
    """Does ``emit`` take a reference from the bool it returns?"""
    probe = _Probe()
    before = {value: sys.getrefcount(value) for value in (True, False)}
    for _ in range(_PROBES):
        probe.signal.emit()
    lost = {value: count - sys.getrefcount(value) for value, count in before.items()}
    for value, count in lost.items():  # give back what the probe took
        for _ in range(max(0, count)):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(value))
    return sum(lost.values()) >= _PROBES - 8  # other threads may move the counts a bit


def install() -> None:
    """Apply the work-around once, if this PySide6 needs it."""
    global _installed
    if _installed:
        return
    _installed = True
    if not emit_loses_references():
        return
    emit = SignalInstance.emit
    incref = ctypes.pythonapi.Py_IncRef

    def emit_keeping_references(self: SignalInstance, *args: object) -> object:
        result = emit(self, *args)
        if result is True or result is False:
            incref(ctypes.py_object(result))
        return result

    SignalInstance.emit = emit_keeping_references
