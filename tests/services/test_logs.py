import json
import logging

from ecdiff.cli import main


def test_serve_logs_json_to_stderr_and_leaves_the_root_logger_as_it_found_it(capsys):
    root = logging.getLogger()
    before = root.handlers[:], root.level
    # A bad setting stops the command before it serves; its reason is a JSON line on stderr.
    assert main(["serve", "edge", "--port", "0", "--latency-ms", "-1"]) == 2
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(e["level"] == "ERROR" and "latency_ms must be >= 0" in e["msg"] for e in lines), lines
    # A handler left behind would write to this test's captured stderr after pytest closes it: every
    # later log line of an in-process server would then fail with "--- Logging error ---".
    assert (root.handlers, root.level) == before
