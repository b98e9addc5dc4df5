from __future__ import annotations

import numpy as np
import pytest

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.robot.telemetry import LogHeader, despike_battery, format_log, parse_log_text, read_log


def test_every_real_log_parses(real_dir):
    logs = sorted(real_dir.glob("*.txt"))
    assert len(logs) == 4
    for p in logs:
        tel = read_log(p)
        assert tel.raw.shape[1] in (16, 24)
        assert np.all(np.diff(tel.raw[:, 0]) > 0)
        assert tel.header.stride_frequency_hz is not None and tel.header.phase == 32768
        assert len(tel.header.columns) == tel.raw.shape[1]
        assert np.all(np.isfinite(tel.vbatt)) and 3.0 < np.median(tel.vbatt) < 4.3


def test_readme_facts_of_2016_logs(log8, log4):
    assert log8.raw.shape == (12398, 24) and log4.raw.shape == (15399, 24)
    assert log8.quirks.missing_samples == 2 and log4.quirks.missing_samples == 1
    assert log8.quirks.battery_spikes >= 3  # 771, 783, 951 between agreeing neighbours
    assert log8.quirks.jitter_samples > 0 and log8.quirks.max_jitter_us < 10
    assert 4.5 <= log8.quirks.shell_refresh_samples <= 6
    revs = (log8.leg_angle[-1, 0] - log8.leg_angle[0, 0]) / (2 * np.pi)
    assert revs == pytest.approx(12.0, abs=0.1)
    assert log8.header.motor_gains == [5000, 400, 200, 0, 300] * 2
    assert log8.raw[0, 16] == 1762  # values kept exactly as logged


def test_sixteen_column_log_has_no_shell(real_dir):
    tel = read_log(real_dir / "2015.02.28_behavior4_2Hz.txt")
    assert not tel.has_shell
    with pytest.raises(QuartetError, match="no shell channels"):
        _ = tel.shell_counts


def _text(rows: list[str]) -> str:
    h = LogHeader(stride_frequency_hz=(1.0, 1.0), phase=32768, motor_gains=[1] * 10)
    from quartet.robot.telemetry import BASE_COLUMNS

    return "\n".join(h.render(BASE_COLUMNS)) + "\n" + "\n".join(rows) + "\n"


def _row(t: int) -> str:
    return ",".join([str(t)] + ["1"] * 14 + ["830"])


def test_malformed_line_is_an_error_or_a_counted_repair():
    rows = [_row(1000 * i) for i in range(1, 6)]
    rows[2] = "3000,1,2,x"
    with pytest.raises(DataCorruptError, match="line 12"):
        parse_log_text(_text(rows))
    tel = parse_log_text(_text(rows), repair=True)
    assert tel.raw.shape[0] == 4 and tel.quirks.dropped_malformed_lines == 1
    assert "malformed" in tel.quirks.summary()


def test_non_increasing_time_is_an_error_or_a_counted_repair():
    rows = [_row(t) for t in (1000, 2000, 2000, 3000, 2500, 4000)]
    with pytest.raises(DataCorruptError, match="non-increasing"):
        parse_log_text(_text(rows))
    tel = parse_log_text(_text(rows), repair=True)
    assert tel.quirks.dropped_nonmonotonic == 2
    assert list(tel.raw[:, 0]) == [1000, 2000, 3000, 4000]


def test_truncated_and_wrong_width_files():
    with pytest.raises(DataCorruptError, match="no data lines"):
        parse_log_text(_text([]).rstrip("\n"))
    with pytest.raises(DataCorruptError, match="columns"):
        parse_log_text("1,2,3\n4,5,6\n")


def test_format_roundtrip():
    raw = np.arange(24 * 30).reshape(30, 24)
    raw[:, 0] = 1000 * np.arange(1, 31)
    h = LogHeader(stride_frequency_hz=(2.0, 2.0), phase=32768, motor_gains=list(range(10)))
    tel = parse_log_text(format_log(raw, h))
    np.testing.assert_array_equal(tel.raw, raw)
    assert tel.header.stride_frequency_hz == (2.0, 2.0) and tel.header.motor_gains == list(range(10))


def test_despike_battery_replaces_only_isolated_glitches():
    v = np.array([3.7, 3.7, 3.3, 3.7, 3.7, 3.6, 3.5, 3.4, 3.4])
    out, n = despike_battery(v)
    assert n == 1 and out[2] == pytest.approx(3.7)
    np.testing.assert_array_equal(out[4:], v[4:])  # gradual sag kept


def test_truncated_last_line_is_reported_and_crlf_parses():
    rows = [_row(1000 * i) for i in range(1, 6)]
    text = _text(rows)
    cut = text[: len(text) - 12]  # file cut in the middle of its last line
    with pytest.raises(DataCorruptError, match="malformed"):
        parse_log_text(cut)
    tel = parse_log_text(cut, repair=True)
    assert tel.raw.shape[0] == 4 and tel.quirks.dropped_malformed_lines == 1
    crlf = parse_log_text(text.replace("\n", "\r\n"))
    assert crlf.raw.shape == (5, 16) and crlf.header.phase == 32768


def test_saturated_channels_are_counted():
    from quartet.robot.telemetry import SHELL_COLUMNS

    h = LogHeader(stride_frequency_hz=(1.0, 1.0), phase=32768)
    raw = np.full((10, 24), 1000, dtype=np.int64)
    raw[:, 0] = 1000 * np.arange(1, 11)
    raw[3, 8] = 32767  # gyro Y pinned
    raw[5, 18] = 4095  # S3 pinned
    tel = parse_log_text(format_log(raw, h))
    assert tel.quirks.imu_saturated_samples == 1 and tel.quirks.shell_saturated_samples == 1
    assert "SATURATED" in tel.quirks.summary() and len(SHELL_COLUMNS) == 8
