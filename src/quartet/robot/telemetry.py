"""Telemetry logs of the VelociRoACH with the tactile sensing shell (Koc et al., ICRA 2019; lab code
bsuper-archive/veloplot, checked against its ``utils.py`` unit conversions).

A log is ``%`` header lines (date, ``Stride Frequency = [r, l]`` Hz, ``Phase``, ``Motor Gains``, ``Columns``) and
comma-separated integer samples at ~1 kHz: 16 columns (time, legs, commands, duty, gyro, accel, back-EMF, battery)
or 24 with the shell channels S1..S8. :func:`read_log` returns a :class:`Telemetry` holding the raw integers
unchanged plus converted, unit-carrying views, and a :class:`QuirkReport` that counts every oddity found (missing
samples, time-stamp jitter, single low battery readings, saturated duty, held shell channels). Nothing is altered
silently: with ``repair=False`` (default) malformed lines and non-monotonic time stamps are errors; with
``repair=True`` they are dropped and each drop is counted in the report. Parsing a 60-s log takes ~0.2 s
(``numpy.loadtxt``'s C parser; a per-line fallback runs only when a line is malformed).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import atomic_write_text

BASE_COLUMNS: tuple[str, ...] = (
    "time", "Right Leg Pos", "Left Leg Pos", "Commanded Right Leg Pos", "Commanded Left Leg Pos", "DCR", "DCL",
    "GyroX", "GyroY", "GyroZ", "AX", "AY", "AZ", "RBEMF", "LBEMF", "VBatt",
)
SHELL_COLUMNS: tuple[str, ...] = tuple(f"S{i}" for i in range(1, 9))

# Lab unit conversions (veloplot utils.py).
ENCODER_COUNTS_PER_REV = 65536
RAD_PER_COUNT = 2 * np.pi / ENCODER_COUNTS_PER_REV  # 95.8738e-6 rad
GYRO_RAD_S_PER_COUNT = (1 / 16.384) * np.pi / 180  # +-2000 deg/s full scale
ACCEL_M_S2_PER_COUNT = 9.81 / 4096  # +-8 g full scale
DUTY_FULL_SCALE = 4096  # +-4096 = +-100 % PWM
DUTY_SATURATION = 3800  # firmware clamp seen in the logs
IMU_FULL_SCALE = 32767  # int16 gyro/accelerometer registers
SHELL_ADC_MAX = 4095  # 12-bit ADC of the shell's proximity sensors
BEMF_V_PER_COUNT = 3.3 / 1024 / (15 / 47)  # ADC ref 3.3 V, differential amp gain 15/47
VBATT_V_PER_COUNT = (3.7 / 2.7) * 3.3 / 1023  # divider 3.7/2.7, ADC ref 3.3 V
US_PER_S = 1e6


@dataclass
class LogHeader:
    """Parsed ``%`` header lines (unknown lines are kept verbatim in ``lines``)."""

    lines: list[str] = field(default_factory=list)
    date: str | None = None
    stride_frequency_hz: tuple[float, float] | None = None
    phase: int | None = None
    motor_gains: list[int] | None = None
    columns: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, lines: list[str]) -> LogHeader:
        h = cls(lines=list(lines))
        for i, line in enumerate(lines):
            body = line.lstrip("%").strip()
            if m := re.match(r"Data file recorded\s+(.*)", body):
                h.date = m.group(1).strip()
            elif m := re.match(r"Stride Frequency\s*=\s*\[([^\]]*)\]", body):
                vals = [float(v) for v in m.group(1).split(",") if v.strip()]
                if len(vals) == 2:
                    h.stride_frequency_hz = (vals[0], vals[1])
            elif m := re.match(r"Phase\s*=\s*(-?\d+)", body):
                h.phase = int(m.group(1))
            elif m := re.match(r"Motor Gains\s*=\s*\[([^\]]*)\]", body):
                h.motor_gains = [int(float(v)) for v in m.group(1).split(",") if v.strip()]
            elif body.startswith("Columns") and i + 1 < len(lines):
                h.columns = [c.strip() for c in lines[i + 1].lstrip("%").split("|") if c.strip()]
        return h

    def render(self, columns: tuple[str, ...]) -> list[str]:
        """Header lines in the lab's layout (used when writing simulated logs)."""
        f = self.stride_frequency_hz or (1.0, 1.0)
        gains = self.motor_gains or [0] * 10
        fmt = lambda v: str(int(v)) if float(v).is_integer() else f"{v:g}"  # noqa: E731
        return [
            f"%  Data file recorded {self.date or 'simulation'}",
            f"%  Stride Frequency         = [{fmt(f[0])}, {fmt(f[1])}]",
            "%  Lead In /Lead Out        = ",
            "%  Deltas (Fractional)      = [0.25, 0.25, 0.25],[0.25, 0.25, 0.25]",
            f"%  Phase                    = {self.phase if self.phase is not None else 32768}",
            "%  Experiment.py ",
            f"%  Motor Gains    = [{', '.join(str(g) for g in gains)}]",
            "% Columns: ",
            "% " + " | ".join(columns),
        ]


@dataclass
class QuirkReport:
    """Every oddity found while reading a log, counted (nothing is changed unless listed under repairs)."""

    n_samples: int = 0
    median_dt_us: float = 0.0
    missing_samples: int = 0  # gaps of ~k*dt count k-1 missing samples
    gap_indices: list[int] = field(default_factory=list)
    jitter_samples: int = 0  # |dt - median| > 2 us without being a gap
    max_jitter_us: float = 0.0
    battery_spikes: int = 0  # isolated readings far from two agreeing neighbours
    duty_saturated_fraction: float = 0.0
    imu_saturated_samples: int = 0  # gyro/accel at the int16 limit
    shell_saturated_samples: int = 0  # S channels at 0 or the 12-bit ADC limit
    shell_refresh_samples: float | None = None  # median run length of held S values
    shell_partial_refresh_rows: int = 0  # rows where some S channels changed and others not
    dropped_malformed_lines: int = 0
    dropped_nonmonotonic: int = 0
    repairs: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.n_samples} samples at {1e6 / self.median_dt_us:.1f} Hz" if self.median_dt_us else ""]
        parts.append(f"{self.missing_samples} missing sample(s)")
        parts.append(f"{self.jitter_samples} jittered time stamp(s) (max {self.max_jitter_us:.0f} us)")
        parts.append(f"{self.battery_spikes} isolated battery reading(s)")
        parts.append(f"duty saturated {100 * self.duty_saturated_fraction:.1f}% of samples")
        if self.imu_saturated_samples or self.shell_saturated_samples:
            parts.append(f"SATURATED: {self.imu_saturated_samples} IMU and {self.shell_saturated_samples} shell "
                         "sample(s) at full scale")
        if self.shell_refresh_samples is not None:
            parts.append(f"shell channels refreshed every {self.shell_refresh_samples:.1f} samples "
                         f"({self.shell_partial_refresh_rows} partial-refresh rows)")
        if self.repairs:
            parts.append("repairs: " + "; ".join(self.repairs))
        return ", ".join(p for p in parts if p)


@dataclass
class Telemetry:
    """One log: raw integer samples (unchanged) and converted views with units."""

    raw: np.ndarray  # int64 [N, 16 or 24]
    header: LogHeader
    quirks: QuirkReport
    path: Path | None = None

    @property
    def has_shell(self) -> bool:
        return self.raw.shape[1] >= 24

    def column(self, name: str) -> np.ndarray:
        cols = BASE_COLUMNS + (SHELL_COLUMNS if self.has_shell else ())
        return self.raw[:, cols.index(name)]

    @property
    def t(self) -> np.ndarray:
        """Time in s."""
        return self.raw[:, 0] / US_PER_S

    @property
    def leg_angle(self) -> np.ndarray:
        """Cumulative (unwrapped) leg angles [N, 2] (right, left) in rad; take ``% 2*pi`` for the crank phase."""
        return self.raw[:, 1:3] * RAD_PER_COUNT

    @property
    def commanded_leg_angle(self) -> np.ndarray:
        """Commanded cumulative leg angles [N, 2] in rad."""
        return self.raw[:, 3:5] * RAD_PER_COUNT

    @property
    def duty(self) -> np.ndarray:
        """Motor duty [N, 2] (right, left) as a signed fraction of full PWM."""
        return self.raw[:, 5:7] / DUTY_FULL_SCALE

    @property
    def gyro(self) -> np.ndarray:
        """Angular rate [N, 3] in rad/s."""
        return self.raw[:, 7:10] * GYRO_RAD_S_PER_COUNT

    @property
    def accel(self) -> np.ndarray:
        """Acceleration [N, 3] in m/s^2."""
        return self.raw[:, 10:13] * ACCEL_M_S2_PER_COUNT

    @property
    def bemf(self) -> np.ndarray:
        """Back-EMF [N, 2] (right, left) in V."""
        return self.raw[:, 13:15] * BEMF_V_PER_COUNT

    @property
    def vbatt(self) -> np.ndarray:
        """Battery voltage [N] in V, as logged (see :func:`despike_battery`)."""
        return self.raw[:, 15] * VBATT_V_PER_COUNT

    @property
    def shell_counts(self) -> np.ndarray:
        """Raw shell sensor counts [N, 8] (S1..S8)."""
        if not self.has_shell:
            name = self.path.name if self.path else "this log"
            raise QuartetError(f"{name} has 16 columns: no shell channels S1..S8, so no forces can be computed")
        return self.raw[:, 16:24].astype(np.float64)

    @property
    def stride_frequency_hz(self) -> float | None:
        f = self.header.stride_frequency_hz
        return None if f is None else float(np.mean(f))

    @property
    def name(self) -> str:
        return self.path.name if self.path else "<memory>"


def despike_battery(v: np.ndarray, rel_jump: float = 0.025, rel_agree: float = 0.01) -> tuple[np.ndarray, int]:
    """Replace isolated battery readings by the mean of their two neighbours.

    A sample counts as an isolated ADC glitch when it differs from its neighbours' mean by more than ``rel_jump``
    while the neighbours agree within ``rel_agree`` (e.g. raw 771 between two 833s in the 8-cm log). Real sag
    under motor load is gradual and is kept. Left in, one glitch moves its stride's mean electrical power by
    ~0.01% but distorts min/max summaries. Returns the cleaned series and the number of samples replaced (the
    caller reports it)."""
    v = np.asarray(v, dtype=np.float64).copy()
    if v.size < 3:
        return v, 0
    nb = 0.5 * (v[:-2] + v[2:])
    bad = (np.abs(v[1:-1] - nb) > rel_jump * nb) & (np.abs(v[:-2] - v[2:]) < rel_agree * nb)
    idx = np.flatnonzero(bad) + 1
    v[idx] = nb[idx - 1]
    return v, int(idx.size)


def _scan_quirks(raw: np.ndarray, q: QuirkReport) -> None:
    t = raw[:, 0].astype(np.int64)
    dt = np.diff(t)
    q.n_samples = int(raw.shape[0])
    if dt.size:
        med = float(np.median(dt))
        q.median_dt_us = med
        gap = dt > 1.5 * med
        q.gap_indices = [int(i) for i in np.flatnonzero(gap)]
        q.missing_samples = int(np.sum(np.round(dt[gap] / med) - 1))
        jit = np.abs(dt[~gap] - med)
        q.jitter_samples = int(np.sum(jit > 2))
        q.max_jitter_us = float(jit.max()) if jit.size else 0.0
    vb = raw[:, 15].astype(np.float64)
    _, q.battery_spikes = despike_battery(vb)
    q.duty_saturated_fraction = float(np.mean(np.abs(raw[:, 5:7]) >= DUTY_SATURATION))
    q.imu_saturated_samples = int(np.any(np.abs(raw[:, 7:13]) >= IMU_FULL_SCALE, axis=1).sum())
    if raw.shape[1] >= 24:
        s = raw[:, 16:24]
        q.shell_saturated_samples = int(np.any((s <= 0) | (s >= SHELL_ADC_MAX), axis=1).sum())
    if raw.shape[1] >= 24 and raw.shape[0] > 1:
        s = raw[:, 16:24]
        changed = np.diff(s, axis=0) != 0
        anyc = changed.any(axis=1)
        q.shell_partial_refresh_rows = int(np.sum(anyc & ~changed.all(axis=1)))
        ch = np.flatnonzero(anyc)
        if ch.size > 2:
            q.shell_refresh_samples = float(np.median(np.diff(ch)))


def _parse_lines_slow(lines: list[str], first_line_no: int, ncols: int, repair: bool, q: QuirkReport,
                      name: str) -> np.ndarray:
    rows = []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            if len(parts) != ncols:
                raise ValueError(f"{len(parts)} fields, expected {ncols}")
            rows.append([int(p) for p in parts])
        except ValueError as e:
            if not repair:
                raise DataCorruptError(
                    f"{name}: line {first_line_no + k} is malformed ({e}): {line[:80]!r}; fix the file or pass "
                    "--repair to drop such lines (each drop is counted and reported)") from None
            q.dropped_malformed_lines += 1
    return np.asarray(rows, dtype=np.int64).reshape(-1, ncols)


def parse_log_text(text: str, name: str = "<memory>", repair: bool = False) -> Telemetry:
    """Parse the text of a log (see module docstring); ``name`` is used in error messages."""
    all_lines = text.split("\n")
    header_lines: list[str] = []
    i = 0
    while i < len(all_lines) and all_lines[i].startswith("%"):
        header_lines.append(all_lines[i])
        i += 1
    header = LogHeader.parse(header_lines)
    body = all_lines[i:]
    first = next((ln for ln in body if ln.strip()), None)
    if first is None:
        raise DataCorruptError(f"{name}: no data lines after the {len(header_lines)} header lines (truncated file?)")
    ncols = len(first.split(","))
    if header.columns:
        ncols = len(header.columns)
    if ncols not in (len(BASE_COLUMNS), len(BASE_COLUMNS) + len(SHELL_COLUMNS)):
        raise DataCorruptError(f"{name}: {ncols} columns; expected 16 (no shell) or 24 (with S1..S8)")
    q = QuirkReport()
    try:
        raw = np.loadtxt(io.StringIO("\n".join(body)), delimiter=",", dtype=np.int64, ndmin=2)
        if raw.shape[1] != ncols:
            raise ValueError("column count")
    except ValueError:
        raw = _parse_lines_slow(body, len(header_lines) + 1, ncols, repair, q, name)
    if q.dropped_malformed_lines:
        q.repairs.append(f"dropped {q.dropped_malformed_lines} malformed line(s)")
    if raw.shape[0] < 2:
        raise DataCorruptError(f"{name}: only {raw.shape[0]} valid sample(s)")
    dt = np.diff(raw[:, 0])
    if np.any(dt <= 0):
        bad = np.flatnonzero(dt <= 0)
        if not repair:
            raise DataCorruptError(
                f"{name}: {bad.size} non-increasing time stamp(s), first at sample {int(bad[0]) + 1} "
                f"({int(raw[bad[0], 0])} -> {int(raw[bad[0] + 1, 0])} us); pass --repair to drop them (counted)")
        keep = np.ones(raw.shape[0], dtype=bool)
        last = raw[0, 0]
        for k in range(1, raw.shape[0]):
            if raw[k, 0] <= last:
                keep[k] = False
            else:
                last = raw[k, 0]
        q.dropped_nonmonotonic = int((~keep).sum())
        raw = raw[keep]
        q.repairs.append(f"dropped {q.dropped_nonmonotonic} sample(s) with duplicated/non-increasing time stamps")
    _scan_quirks(raw, q)
    return Telemetry(raw=raw, header=header, quirks=q)


def read_log(path: str | Path, repair: bool = False) -> Telemetry:
    """Read a telemetry log file; errors name the file and the offending line."""
    p = Path(path)
    if not p.is_file():
        raise QuartetError(f"telemetry log {p} not found")
    try:
        text = p.read_text(encoding="ascii")
    except UnicodeDecodeError as e:
        raise DataCorruptError(f"{p}: not an ASCII telemetry log ({e})") from e
    tel = parse_log_text(text, name=str(p), repair=repair)
    tel.path = p
    return tel


def format_log(raw: np.ndarray, header: LogHeader) -> str:
    """The text of a log in the lab's format (integer columns, 9 header lines)."""
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.shape[1] not in (16, 24):
        raise QuartetError(f"raw telemetry must be [N, 16] or [N, 24], got {raw.shape}")
    cols = BASE_COLUMNS + (SHELL_COLUMNS if raw.shape[1] == 24 else ())
    buf = io.StringIO()
    np.savetxt(buf, np.rint(raw).astype(np.int64), fmt="%d", delimiter=",")
    return "\n".join(header.render(cols)) + "\n" + buf.getvalue()


def write_log(path: str | Path, raw: np.ndarray, header: LogHeader) -> Path:
    """Write a log atomically in the lab's format."""
    return atomic_write_text(path, format_log(raw, header))
