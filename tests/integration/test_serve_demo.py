"""``activity demo --keep`` serves the Activity API in its own process (chDB is opened by one
process at a time): the printed kubectl line works on the demo's data."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration import serve_tools as st

pytestmark = pytest.mark.integration


def test_demo_keep_prints_a_working_kubectl_line(tmp_path: Path, require_nats: None) -> None:
    binary = st.kubectl_binary()
    env = dict(os.environ, HOME=str(tmp_path), TMPDIR=str(tmp_path))
    env.pop("ACTIVITY_CLICKHOUSE_URL", None)
    env.pop("ACTIVITY_DATA_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "processor", "demo", "--keep"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = ""
        for line in proc.stdout:
            banner += line
            if "printed then" in line:
                break
        found = re.search(r"API:\s+(kubectl --server http://127\.0\.0\.1:\d+ get activities -A)",
                          banner)  # fmt: skip
        assert found, banner
        argv = shlex.split(found.group(1))
        kubectl = st.Kubectl(binary, argv[2], tmp_path / "kubectl")
        out = kubectl.ok(*argv[3:])
        assert out.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "SUMMARY"]
        assert "alice deleted Deployment worker in shop" in out
        yaml_out = kubectl.ok("get", "events", "-A", "-o", "yaml")
        assert "NodeNotReady" in yaml_out
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
