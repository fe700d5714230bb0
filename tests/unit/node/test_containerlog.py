"""The message of a container log line, as the kubelet (CRI), Docker's json-file driver or crictl wrote it."""

from __future__ import annotations

from installer.node.containerlog import message

KLOG = 'E1122 16:35:20.123456       1 run.go:72] "command failed" err="invalid audit webhook config"'


def test_cri_lines_lose_their_time_stream_and_tag() -> None:
    assert message(f"2026-11-22T16:35:20.123456789Z stderr F {KLOG}") == KLOG
    assert message("2026-11-22T16:35:20.1Z stdout P part of a long li") == "part of a long li"
    assert message("2026-11-22T16:35:20.1Z stdout F ") == ""


def test_docker_json_file_lines_give_their_log_field() -> None:
    line = '{"log":"' + KLOG.replace('"', '\\"') + '\\n","stream":"stderr","time":"2026-11-22T16:35:20.1Z"}'
    assert message(line) == KLOG


def test_anything_else_is_kept_as_it_is() -> None:
    assert message(KLOG) == KLOG  # crictl logs prints bare messages
    assert message("{not json") == "{not json"
    assert message('{"no": "log field"}') == '{"no": "log field"}'
    assert message("2026-11-22 not a CRI line") == "2026-11-22 not a CRI line"
