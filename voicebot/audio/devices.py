"""Audio devices: list them, choose one by name, and pick a sample rate it supports.

Settings store device *names* (``AudioSettings.input_device``), never PortAudio indices:
indices change whenever a device is plugged in or PortAudio re-initialises, names do not.
A stored name that is no longer present falls back to the system default, and the choice
says so (``DeviceChoice.fallback_reason``) so the UI can tell the user.

Nothing here opens a stream except :func:`supported_rates`, which asks PortAudio whether
a format would open (``check_*_settings``) without starting anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import sounddevice as sd

log = logging.getLogger(__name__)

Kind = Literal["input", "output"]
# Rates worth offering; the device's own default is always tried first.
COMMON_RATES = (8_000, 11_025, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 88_200, 96_000)


class AudioDeviceError(RuntimeError):
    """Base class of the errors a user can act on by picking another device."""


class NoDeviceError(AudioDeviceError):
    """There is no device of the wanted kind at all (for input: no microphone)."""


class DeviceLostError(AudioDeviceError):
    """A device disappeared or failed while a stream was running on it."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    supported_rates: tuple[int, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        """What to show in a device menu."""
        return f"{self.name} ({self.host_api})"

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels


@dataclass(frozen=True)
class DeviceChoice:
    device: DeviceInfo
    fallback_reason: str = ""  # non-empty when the wanted device could not be used


def _info(index: int, raw: dict, host_apis: list[dict]) -> DeviceInfo:
    return DeviceInfo(index=index, name=raw["name"], host_api=host_apis[raw["hostapi"]]["name"],
                      max_input_channels=int(raw["max_input_channels"]),
                      max_output_channels=int(raw["max_output_channels"]),
                      default_samplerate=float(raw["default_samplerate"]))


def list_devices(kind: Kind, with_rates: bool = False) -> list[DeviceInfo]:
    """Devices that can record (``"input"``) or play (``"output"``), in PortAudio order.

    ``with_rates`` also probes which of :data:`COMMON_RATES` each device accepts (a few
    milliseconds per device).
    """
    host_apis = list(sd.query_hostapis())
    devices = []
    for index, raw in enumerate(sd.query_devices()):
        info = _info(index, raw, host_apis)
        if info.channels(kind) <= 0:
            continue
        if with_rates:
            info = DeviceInfo(**{**info.__dict__,
                                 "supported_rates": supported_rates(info, kind)})
        devices.append(info)
    return devices


def _default_index(kind: Kind) -> int:
    default = sd.default.device[0 if kind == "input" else 1]
    if default is None or default < 0:
        try:
            return int(sd.query_devices(kind=kind)["index"])
        except (sd.PortAudioError, ValueError, KeyError):
            return -1
    return int(default)


def choose_device(name: str, kind: Kind) -> DeviceChoice:
    """The device called ``name`` ("" = the system default), else the default, else any.

    Raises :class:`NoDeviceError` when no device of this kind exists.
    """
    devices = list_devices(kind)
    if not devices:
        what = "microphone (input)" if kind == "input" else "speaker (output)"
        raise NoDeviceError(f"no audio {what} device found; connect one, or check that the "
                            "sound system (PulseAudio/PipeWire/ALSA) is running")
    by_index = {d.index: d for d in devices}
    default = by_index.get(_default_index(kind), devices[0])
    if not name:
        return DeviceChoice(default)
    for device in devices:  # exact name first, then the label shown in menus
        if name in (device.name, device.label):
            return DeviceChoice(device)
    reason = (f"the {kind} device {name!r} is not available; using {default.label!r} "
              "instead")
    log.warning(reason)
    return DeviceChoice(default, fallback_reason=reason)


def _rate_ok(device: DeviceInfo, kind: Kind, rate: float, channels: int) -> bool:
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device.index, samplerate=rate, channels=channels, dtype="float32")
    except (sd.PortAudioError, ValueError):
        return False
    return True


def supported_rates(device: DeviceInfo, kind: Kind) -> tuple[int, ...]:
    channels = min(device.channels(kind), 2)
    return tuple(r for r in COMMON_RATES if _rate_ok(device, kind, r, channels))


def pick_rate(device: DeviceInfo, kind: Kind, wanted: float | None, channels: int) -> float:
    """``wanted`` if the device accepts it, else its default rate (the caller resamples).

    Raises :class:`AudioDeviceError` if the device accepts neither (nor any common rate).
    """
    candidates = [wanted] if wanted else []
    candidates += [device.default_samplerate, *sorted(COMMON_RATES, reverse=True)]
    for rate in candidates:
        if rate and _rate_ok(device, kind, rate, channels):
            if wanted and rate != wanted:
                log.info("%s does not support %g Hz; using %g Hz and resampling",
                         device.label, wanted, rate)
            return float(rate)
    raise AudioDeviceError(f"{device.label} accepts none of the sample rates "
                           f"{', '.join(str(int(r)) for r in candidates if r)} with "
                           f"{channels} channel(s)")
