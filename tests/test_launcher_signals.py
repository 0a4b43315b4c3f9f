"""`p2p run --nproc 2` on CPU processes (gloo) looks after its processes: a signal to the launcher stops them
together with a checkpoint, a second one at once; one process's death ends the others with one screen naming it
and the intact latest checkpoint; a killed launcher leaves no process training on. In every case no process is
left, the run's lock is free and the latest checkpoint reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch.distributed
from conftest import L1_TERM, synthetic_data, tiny_networks

from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.commands.run import FORWARDED, LAUNCHER
from p2pcore.rundir import RunDir

pytestmark = [
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads a process's children from /proc"),
]
ROOT = Path(__file__).resolve().parents[1]
INSTANCE_NORM = 'norm = { name = "instance", affine = true }\n'
RECIPE = "\n" + synthetic_data(64) + tiny_networks(generator=INSTANCE_NORM + "dropout = 0.0\n",
                                                   discriminator="n_layers = 2\n" + INSTANCE_NORM) + """[loss]
gan = { name = "gan", mode = "lsgan" }
""" + L1_TERM + """[train]
epochs = 1000
batch_size = 4
num_workers = 0
log_every = 1
checkpoint_steps = 2
device = "cpu"
[eval]
metrics = []
"""


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Run:
    """A two-process run started in the background and brought to its first checkpoint (step 2)."""

    def __init__(self, tmp_path: Path, *changes: str) -> None:
        recipe = tmp_path / "long.toml"
        recipe.write_text(RECIPE)
        self.out = tmp_path / "run"
        self.launcher = subprocess.Popen(
            [sys.executable, "-m", "p2pcore", "run", str(recipe), "--out", str(self.out), "--nproc", "2", "--quiet",
             *(f"--set={change}" for change in changes)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while not self.run_dir.latest.exists():
            assert self.launcher.poll() is None, self.launcher.communicate()
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        self.workers = children(self.launcher.pid)
        assert len(self.workers) == 2

    @property
    def run_dir(self) -> RunDir:
        return RunDir(self.out)

    def end(self, timeout: float = 120) -> tuple[int, str]:
        """The launcher's exit code and error output, once it and its processes have ended."""
        _, stderr = self.launcher.communicate(timeout=timeout)
        deadline = time.monotonic() + timeout
        while any(alive(pid) for pid in self.workers):
            assert time.monotonic() < deadline, "a process trains on"
            time.sleep(0.2)
        return self.launcher.returncode, stderr

    def assert_intact(self) -> int:
        """The lock is free and the latest checkpoint reads; its step."""
        with self.run_dir.lock():
            pass
        return read_checkpoint(self.run_dir.latest).metadata["step"]


def test_a_closed_terminal_stops_the_processes_as_sigterm_does():
    assert FORWARDED[signal.SIGHUP] == signal.SIGTERM and FORWARDED[signal.SIGINT] == signal.SIGINT


def test_sigterm_to_the_launcher_stops_every_process_with_a_checkpoint(tmp_path):
    run = Run(tmp_path)
    run.launcher.send_signal(signal.SIGTERM)
    code, stderr = run.end()
    assert code == 128 + signal.SIGTERM, stderr
    assert stderr.strip().startswith("interrupted: the latest checkpoint is in") and "--nproc 2" in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    logged = [json.loads(line) for line in (run.out / "metrics.jsonl").read_text().splitlines()]
    assert run.assert_intact() == max(record["step"] for record in logged)  # the step they stopped at


def test_a_second_ctrl_c_stops_them_at_once(tmp_path):
    run = Run(tmp_path, "train.log_every=1000")  # the processes agree to stop at log steps only: none comes
    run.launcher.send_signal(signal.SIGINT)
    time.sleep(1)  # two signals in a row may arrive as one
    run.launcher.send_signal(signal.SIGINT)
    code, stderr = run.end()
    assert code == 130, stderr
    assert stderr.strip().startswith("stopped at once: the latest checkpoint is in") and "Traceback" not in stderr
    run.assert_intact()


def test_one_process_killed_ends_the_other_with_one_screen(tmp_path):
    run = Run(tmp_path)
    os.kill(run.workers[1], signal.SIGKILL)
    code, stderr = run.end()
    assert code == 1, stderr
    assert "error: process 1 of 2 was killed (SIGKILL); the run stopped" in stderr
    assert "is intact:" in stderr and "p2p run --resume --out" in stderr and "--nproc 2" in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 5, stderr
    step = run.assert_intact()
    assert f"(step {step})" in stderr


def test_a_killed_launcher_leaves_no_process_training(tmp_path):
    run = Run(tmp_path)
    run.launcher.kill()
    code, stderr = run.end()
    assert code == -signal.SIGKILL
    assert "interrupted: the latest checkpoint is in" in stderr  # the processes said it themselves
    run.assert_intact()


LAUNCHED = """
import os, signal, sys, time
from p2pcore.commands import run
signal.signal(signal.SIGTERM, lambda *_: print("launcher alive:", run._launcher_alive(), flush=True) or sys.exit(0))
run._follow_launcher()
print("following", flush=True)
time.sleep(30)
"""


def test_a_launcher_whose_first_thread_ended_is_taken_for_gone(tmp_path):
    """The kernel signals a launched process when the thread that started it ends; until the launcher's last
    thread has ended, the process's parent is still the launcher. Ending, it cannot report for the process."""
    (tmp_path / "launched.py").write_text(LAUNCHED)
    launcher = textwrap.dedent(f"""
        import ctypes, os, subprocess, sys, threading, time
        threading.Thread(target=time.sleep, args=(3,)).start()  # a thread that outlives the first
        child = subprocess.Popen([sys.executable, {str(tmp_path / "launched.py")!r}], stdout=subprocess.PIPE,
                                 text=True, env={{**os.environ, {LAUNCHER!r}: str(os.getpid())}})
        print(child.stdout.readline().strip(), flush=True)
        threading.Thread(target=lambda: print(child.stdout.read().strip(), flush=True)).start()
        ctypes.CDLL(None).pthread_exit(None)  # the first thread ends; the process lives on in the others
    """)
    done = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.stdout.split("\n")[:2] == ["following", "launcher alive: False"], done.stdout + done.stderr
