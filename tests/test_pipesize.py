"""grow_pipe: a pipe on the output grows to 1 MiB; anything else is left alone."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from logist_server.domain.model import AgentSpec, Job
from logist_server.store.job_store import JobStore, new_job_id
from logist_server.support.pipesize import PIPE_BYTES, grow_pipe

F_GETPIPE_SZ = 1032


def test_a_pipe_grows_and_a_file_is_left_alone(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        assert fcntl.fcntl(write_end, F_GETPIPE_SZ) < PIPE_BYTES
        grow_pipe(write_end)
        assert fcntl.fcntl(write_end, F_GETPIPE_SZ) == PIPE_BYTES
    finally:
        os.close(read_end)
        os.close(write_end)
    with open(tmp_path / "out", "wb") as handle:
        grow_pipe(handle.fileno())  # not a pipe: no error, nothing changes
        handle.write(b"still writable")
    assert (tmp_path / "out").read_bytes() == b"still writable"


def test_job_list_json_grows_the_pipe_it_writes_to(tmp_path: Path) -> None:
    """The listing's reader sees a 1 MiB pipe: checked from inside the reading process."""
    code = (
        "import fcntl, subprocess, sys\n"
        "proc = subprocess.Popen([sys.argv[1], 'job', 'list', '--json'], cwd=sys.argv[2],\n"
        "                        stdout=subprocess.PIPE)\n"
        "proc.stdout.read()\n"
        "print(fcntl.fcntl(proc.stdout.fileno(), 1032))\n"
        "proc.wait()\n"
    )
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    store = JobStore(tmp_path)
    store.insert(Job(id=new_job_id(), prompt="p", repo=str(tmp_path), agent=AgentSpec("mock")))
    store.close()
    logist = Path(sys.executable).parent / "logist"
    out = subprocess.run(
        [sys.executable, "-c", code, str(logist), str(tmp_path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert int(out.stdout) == PIPE_BYTES
