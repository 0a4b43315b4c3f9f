"""`p2p study`: pairing, trial plans, result files, the bootstrap, the server's refusals, and a whole
session answered in headless Chromium."""

from __future__ import annotations

import concurrent.futures
import functools
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import run_without_torch
from PIL import Image

from p2pcore.errors import P2PError
from p2pcore.study import StudyServer, StudySettings, bootstrap_interval, make_plan, pair_images, read_session
from p2pcore.study.pairs import unmatched_note
from p2pcore.study.results import read_sessions
from p2pcore.study.server import _Handler
from p2pcore.study.summary import summarize

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
FAST = {"seconds": 0.05, "gap_seconds": 0.01, "feedback_seconds": 0.05}


def write_images(folder: Path, names: list[str], seed: int, size: int = 24) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / name)


@pytest.fixture
def study_dirs(tmp_path: Path) -> tuple[Path, Path]:
    names = [f"scene{i:02d}.png" for i in range(12)]
    write_images(tmp_path / "real", names, seed=1)
    write_images(tmp_path / "fake", names, seed=2)
    return tmp_path / "real", tmp_path / "fake"


def p2p(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"}, timeout=60, **kwargs)


# pairing


def test_pairs_by_file_name_and_reports_the_rest(tmp_path):
    write_images(tmp_path / "real", ["a.png", "b.png", "c.jpg"], seed=0)
    write_images(tmp_path / "fake", ["b.png", "c.jpg", "d.png", ".hidden.png"], seed=1)
    (tmp_path / "fake" / "notes.txt").write_text("not an image")
    pairs = pair_images(tmp_path / "real", tmp_path / "fake")
    assert pairs.names == ("b.png", "c.jpg")
    assert pairs.only_real == ("a.png",) and pairs.only_fake == ("d.png",)
    note = unmatched_note(pairs)
    assert "a.png" in note and "d.png" in note


def test_pairing_mistakes_are_clear_errors(tmp_path):
    write_images(tmp_path / "real", ["a.png", "b.png"], seed=0)
    write_images(tmp_path / "other", ["x.png", "y.png"], seed=1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    cases = {tmp_path / "missing": "does not exist", tmp_path / "real" / "a.png": "must be a folder",
             tmp_path / "empty": "no images", tmp_path / "other": "share no file names"}
    for fake, message in cases.items():
        with pytest.raises(P2PError) as caught:
            pair_images(tmp_path / "real", fake)
        assert message in caught.value.message and caught.value.file == str(fake)
    with pytest.raises(P2PError) as caught:
        pair_images(tmp_path / "real", tmp_path / "other")
    listed = "\n".join(caught.value.details)
    assert "a.png" in listed and "x.png" in listed


# the trial plan


def test_plan_counts_practice_first_and_seeded():
    names = [f"n{i}" for i in range(60)]
    plan = make_plan(names, trials=40, practice=10, seed=7)
    assert [t.index for t in plan] == list(range(50))
    assert [t.practice for t in plan] == [True] * 10 + [False] * 40
    assert len({t.name for t in plan}) == 50, "enough pairs: no image twice"
    assert plan == make_plan(list(reversed(names)), trials=40, practice=10, seed=7), "the order of the listing"
    others = [make_plan(names, trials=40, practice=10, seed=s) for s in range(8, 12)]
    assert all([t.name for t in o] != [t.name for t in plan] for o in others)
    assert all([t.real_side for t in o] != [t.real_side for t in plan] for o in others)


@pytest.mark.parametrize(("practice", "trials"), [(10, 40), (3, 7), (0, 1)])
def test_plan_balances_sides_within_each_phase(practice, trials):
    for seed in range(20):
        plan = make_plan(["a", "b", "c"], trials=trials, practice=practice, seed=seed)
        for phase in (plan[:practice], plan[practice:]):
            left = sum(t.real_side == "left" for t in phase)
            assert abs(2 * left - len(phase)) <= 1


def test_plan_repeats_only_after_every_pair_was_shown():
    names = [f"n{i}" for i in range(7)]
    plan = make_plan(names, trials=20, practice=5, seed=3)
    drawn = [t.name for t in plan]
    assert sorted(drawn[:7]) == sorted(names)
    assert sorted(drawn[7:14]) == sorted(names)
    assert set(Counter(drawn).values()) <= {3, 4}
    assert all(a != b for a, b in zip(drawn, drawn[1:], strict=False))


# the bootstrap


def simulate(rate: float, participants: int, trials: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Participants who differ (their own rates around `rate`), each judging `trials` pairs."""
    own = np.clip(rng.normal(rate, 0.08, participants), 0.01, 0.99)
    return [trials] * participants, list(rng.binomial(trials, own))


def test_interval_covers_a_known_fooling_rate():
    rng = np.random.default_rng(0)
    covered = 0
    for study in range(60):
        n, f = simulate(0.3, 10, 40, rng)
        low, high = bootstrap_interval(n, f, resamples=2000, seed=study)
        assert low <= sum(f) / sum(n) <= high
        covered += low <= 0.3 <= high
    assert covered >= 51, f"a 95% interval covered the true rate in only {covered} of 60 studies"


def test_interval_narrows_with_more_trials_and_is_seeded():
    rng = np.random.default_rng(1)
    widths = []
    for participants in (4, 16, 64):
        low, high = bootstrap_interval(*simulate(0.4, participants, 40, rng), resamples=4000, seed=0)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0
    n, f = simulate(0.4, 5, 40, rng)
    assert bootstrap_interval(n, f, seed=3) == bootstrap_interval(n, f, seed=3)
    assert bootstrap_interval(n, f, seed=3) != bootstrap_interval(n, f, seed=4)


# a session over HTTP (no browser)


def request(server: StudyServer, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in ({"Host": f"127.0.0.1:{server.port}"} | (headers or {})).items():
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def post(server: StudyServer, path: str, body: dict) -> dict:
    status, data = request(server, "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status == 200, data
    return json.loads(data)


def answer_all(server: StudyServer, choose) -> tuple[dict, list[dict]]:
    """One participant answering every trial over HTTP; `choose(index)` picks a side."""
    started = post(server, "/api/session", {})
    replies = [post(server, "/api/answer", {"session": started["session"], "trial": i, "chosen": choose(i),
                                             "rt_ms": 300 + i})
               for i in range(started["practice"] + started["trials"])]
    return started, replies


def test_a_session_over_http_is_saved_with_its_settings(study_dirs, tmp_path):
    real, fake = study_dirs
    settings = StudySettings(trials=6, practice=2, seed=5, **FAST)
    with StudyServer(pair_images(real, fake), settings, tmp_path / "out" / "res.json", stop_after=2) as server:
        started, replies = answer_all(server, lambda i: "left")
        session = server.sessions[started["session"]]
        for index, trial in enumerate(session.plan):  # each side serves the file the plan says
            for side in ("left", "right"):
                status, data = request(server, "GET", f"/image/{session.id}/{index}/{side}")
                source = real if side == trial.real_side else fake
                assert status == 200 and data == (source / trial.name).read_bytes()
        assert [("correct" in r) for r in replies] == [True] * 2 + [False] * 6, "feedback only in practice"
        assert replies[-1]["complete"] and not any(r["complete"] for r in replies[:-1])
        answer_all(server, lambda i: "right")
        assert server.wait(10), "the server stops after stop_after sessions"
    files = sorted((tmp_path / "out").glob("res-*.json"))
    assert [f.name for f in files] == ["res-001.json", "res-002.json"]
    assert not list((tmp_path / "out").glob(".*")), "no temporary file left"
    record = json.loads(files[0].read_text())
    assert record["settings"]["seed"] == 5 and record["settings"]["trials"] == 6 and record["complete"]
    assert record["real_dir"] == str(real) and record["fake_dir"] == str(fake)
    assert [a["chosen"] for a in record["answers"]] == ["left"] * 8
    assert [a["real_side"] for a in record["answers"]] == [t.real_side for t in session.plan]
    fooled = sum(a["real_side"] == "right" for a in record["answers"][2:])
    assert replies[-1]["fooled"] == fooled and replies[-1]["judged"] == 6
    second = read_session(files[1])
    assert second.participant == 2 and [a.chosen for a in second.answers] == ["right"] * 8


def test_server_serves_no_path_and_refuses_other_hosts_and_forms(study_dirs, tmp_path):
    real, fake = study_dirs
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-CONTENT")
    with StudyServer(pair_images(real, fake), StudySettings(trials=2, practice=0, **FAST),
                     tmp_path / "res.json") as server:
        sid = post(server, "/api/session", {})["session"]
        assert request(server, "GET", f"/image/{sid}/0/left")[0] == 200
        for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/scene00.png", "/real/scene00.png",
                     f"/image/{sid}/0/../../../secret.txt", f"/image/{sid}/0/..%2f..%2fsecret.txt",
                     f"/image/{sid}/0/left/../../../../secret.txt", f"/image/{sid}/9/left", f"/image/{sid}/-1/left",
                     "/image/" + "0" * 32 + "/0/left", f"/{tmp_path}/secret.txt", "//etc/passwd",
                     f"/image/{sid}/0/{real}/scene00.png"]:
            status, data = request(server, "GET", path)
            assert status == 404, path
            assert b"SECRET" not in data and not data.startswith(b"\x89PNG"), path
        assert request(server, "GET", "/", headers={"Host": "evil.example:80"})[0] == 403
        assert request(server, "GET", f"/image/{sid}/0/left", headers={"Host": "attacker.test"})[0] == 403
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert request(server, "POST", "/api/answer", b"session=x", form)[0] == 415
        assert request(server, "POST", "/api/answer", b"{" + b" " * 10_000 + b"}",
                       {"Content-Type": "application/json"})[0] == 413
        for bad in [{"session": sid, "trial": 1, "chosen": "left", "rt_ms": 5},  # out of order
                    {"session": sid, "trial": 0, "chosen": "up", "rt_ms": 5},
                    {"session": sid, "trial": 0, "chosen": "left", "rt_ms": -1},
                    {"session": "nope", "trial": 0, "chosen": "left", "rt_ms": 5}]:
            status, _ = request(server, "POST", "/api/answer", json.dumps(bad).encode(),
                                {"Content-Type": "application/json"})
            assert status in (400, 404, 409), bad
        status, page = request(server, "GET", "/")
        assert status == 200 and b"Which was real?" in page
        assert b"http://" not in page and b"https://" not in page, "the page loads nothing from elsewhere"


def test_server_survives_hostile_bodies_and_crowds(study_dirs, tmp_path, monkeypatch):
    """Deep JSON is refused with 400; a body that never arrives frees its thread after the
    socket's timeout; 40 participants connecting at once are all served."""
    monkeypatch.setattr(_Handler, "timeout", 1.0)
    real, fake = study_dirs
    with StudyServer(pair_images(real, fake), StudySettings(trials=2, practice=0, **FAST),
                     tmp_path / "res.json") as server:
        as_json = {"Content-Type": "application/json"}
        assert request(server, "POST", "/api/answer", b"[" * 2000 + b"]" * 2000, as_json)[0] == 400
        short = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        short.sendall(f"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}".encode())
        assert short.recv(1000).startswith(b"HTTP/1.0 408"), "a body shorter than its length times out"
        short.close()
        barrier = threading.Barrier(40)

        def participant(_: int) -> int:
            barrier.wait()
            return request(server, "POST", "/api/session", b"{}", as_json)[0]

        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            assert list(pool.map(participant, range(40))) == [200] * 40


# result files and the summary


def test_summary_pools_participants(study_dirs, tmp_path):
    real, fake = study_dirs
    with StudyServer(pair_images(real, fake), StudySettings(trials=10, practice=2, seed=1, **FAST),
                     tmp_path / "res.json") as server:
        answer_all(server, lambda i: "left")
        answer_all(server, lambda i: "right")
    sessions = read_sessions(sorted(tmp_path.glob("res-*.json")))
    result = summarize(sessions, resamples=1000)
    fooled = [sum(a.chosen != a.real_side for a in s.answers if not a.practice) for s in sessions]
    assert sum(fooled) == 10, "one always says left, the other right: half the time the real one is on the left"
    assert [p.fooled for p in result.participants] == fooled and result.trials == 20
    assert result.low <= result.rate <= result.high


def write_results(tmp_path: Path, study_dirs: tuple[Path, Path], count: int) -> list[Path]:
    with StudyServer(pair_images(*study_dirs), StudySettings(trials=10, practice=2, seed=1, **FAST),
                     tmp_path / "res.json") as server:
        for k in range(count):
            answer_all(server, lambda i, k=k: "left" if (i + k) % 3 else "right")
    return sorted(tmp_path.glob("res-*.json"))


def test_summarize_command_prints_rates_without_torch(study_dirs, tmp_path):
    files = write_results(tmp_path, study_dirs, 3)
    done = run_without_torch(["study", "--summarize", *map(str, files), "--resamples", "500"], timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    sessions = read_sessions(files)
    fooled = sum(a.chosen != a.real_side for s in sessions for a in s.answers if not a.practice)
    assert "participants" in done.stdout and f"{fooled} of 30" in done.stdout
    assert "participants resampled, then each drawn participant's trials" in done.stdout
    for f in files:
        assert str(f) in done.stdout


def test_damaged_result_files_are_named(study_dirs, tmp_path):
    good = write_results(tmp_path, study_dirs, 1)[0]
    text = good.read_text()
    record = json.loads(text)
    damaged = {"truncated.json": (text[: len(text) // 2], "truncated"),
               "wrong.json": (json.dumps(record | {"answers": [dict(record["answers"][0], chosen=3)]}), "chosen"),
               "other.json": (json.dumps({"hello": 1}), "not a p2p study result file"),
               "copy.json": (text, "same session"),
               "deep.json": ("[" * 5000 + "]" * 5000, "nests its values deeper"),
               "digits.json": (text.replace('"participant": 1', '"participant": ' + "7" * 5000), "does not read")}
    for name, (content, message) in damaged.items():
        path = tmp_path / name
        path.write_text(content)
        done = p2p("study", "--summarize", str(good), str(path))
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) <= 10
        assert str(path) in done.stderr and message in done.stderr, (name, done.stderr)


def test_result_paths_that_are_not_files_are_refused_without_reading(study_dirs, tmp_path):
    good = write_results(tmp_path, study_dirs, 1)[0]
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for path, message in [(fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file")]:
        done = p2p("study", "--summarize", str(good), str(path))
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert str(path) in done.stderr and message in done.stderr, done.stderr


def test_study_command_input_mistakes_exit_2(study_dirs, tmp_path):
    real, _ = study_dirs
    write_images(tmp_path / "unrelated", ["zebra.png"], seed=3)
    for args, text in [((str(real), str(tmp_path / "nowhere")), "does not exist"),
                       ((str(real), str(tmp_path / "unrelated")), "zebra.png"),
                       ((str(real),), "give two folders")]:
        done = p2p("study", *args, "--no-browser")
        assert done.returncode == 2, done.stderr
        assert text in done.stderr and "Traceback" not in done.stderr and len(done.stderr.splitlines()) <= 10


def test_ctrl_c_stops_the_server_cleanly(study_dirs, tmp_path):
    real, fake = study_dirs
    command = [sys.executable, "-m", "p2pcore", "study", str(real), str(fake), "--no-browser", "--out",
               str(tmp_path / "res.json"), "--seed", "4"]
    # a test run started in the background ignores SIGINT, and its children inherit that: give the server
    # Ctrl-C as a terminal's foreground job has it
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
                                    "PYTHONFAULTHANDLER": "1"},
                               preexec_fn=functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL))
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("http://127.0.0.1:" in line for line in lines):
            lines.append(process.stdout.readline())
        url = next(line for line in lines if "http://127.0.0.1:" in line).split("http://127.0.0.1:")[1]
        connection = http.client.HTTPConnection("127.0.0.1", int(url.split("/")[0]), timeout=5)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200 and b"<html" in response.read()
        connection.close()
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack to stderr
            pytest.fail(f"p2p study still ran 15 s after Ctrl-C; its threads:\n{process.communicate(timeout=10)[1]}")
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "stopped: 0 of 0 session(s) complete" in out


# a whole session in a browser


def _browser():
    """Headless Chromium through Playwright, or a skip saying what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        pytest.skip(f"no Chromium at {CHROMIUM} or on the PATH")
    return sync_playwright, executable


WATCH = """
window.feedbackSeen = []; window.pairsShown = [];
document.addEventListener("DOMContentLoaded", () => {
  const feedback = document.getElementById("feedback");
  new MutationObserver(() => {
    if (!feedback.hidden && feedback.textContent)
      window.feedbackSeen.push([document.getElementById("progress").textContent, feedback.textContent]);
  }).observe(feedback, { attributes: true, childList: true, characterData: true, subtree: true });
  const pair = document.getElementById("pair");
  new MutationObserver(() => {
    const images = [...pair.querySelectorAll("img")];
    if (images.length) window.pairsShown.push({ at: performance.now(), complete: images.every((i) => i.complete),
      sizes: images.map((i) => [i.naturalWidth, i.width, i.height]) });
    else if (window.pairsShown.length) window.pairsShown.at(-1).shown = performance.now() - window.pairsShown.at(-1).at;
  }).observe(pair, { childList: true });
});
"""


def test_a_participant_in_headless_chromium(study_dirs, tmp_path):
    sync_playwright, executable = _browser()
    real, fake = study_dirs
    settings = StudySettings(trials=40, practice=10, seed=11, **FAST)
    chosen = ["left" if (i * 7) % 5 < 2 else "right" for i in range(50)]
    problems: list[str] = []
    with StudyServer(pair_images(real, fake), settings, tmp_path / "res.json", stop_after=1) as server, \
            sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # noqa: BLE001 - any launch failure means no usable browser here
            pytest.skip(f"Chromium does not start: {exc}")
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.add_init_script(WATCH)
        page.goto(server.url)
        page.click("#start")
        for i, side in enumerate(chosen):
            if i == settings.practice:
                page.wait_for_selector("#break", state="visible")
                assert page.inner_text("#feedback") == ""
                page.click("#continue")
            expected = f"Practice {i + 1} of 10" if i < 10 else f"Trial {i - 9} of 40"
            page.wait_for_function("t => !document.getElementById('question').hidden && "
                                   "document.getElementById('progress').textContent === t", arg=expected)
            if i % 3 == 0:
                page.keyboard.press({"left": "f", "right": "j"}[side])
            elif i % 3 == 1:
                page.keyboard.press({"left": "ArrowLeft", "right": "ArrowRight"}[side])
            else:
                page.click(f"#choose-{side}")
        page.wait_for_selector("#done", state="visible")
        thanks = page.inner_text("#result")
        feedback_seen = page.evaluate("window.feedbackSeen")
        pairs_shown = page.evaluate("window.pairsShown")
        shot = tmp_path / "done.png"
        page.screenshot(path=str(shot))
        browser.close()
        assert server.wait(10)
    assert problems == [], problems
    record = json.loads(server.completed[0].read_text())
    answers = record["answers"]
    assert [a["practice"] for a in answers] == [True] * 10 + [False] * 40
    assert [a["chosen"] for a in answers] == chosen and [a["trial"] for a in answers] == list(range(50))
    assert all(isinstance(a["rt_ms"], int) and 0 <= a["rt_ms"] < 60_000 for a in answers)
    assert {a["image"] for a in answers} <= set(pair_images(real, fake).names)
    assert record["complete"] and record["settings"]["seconds"] == 0.05
    fooled = sum(a["chosen"] != a["real_side"] for a in answers[10:])
    assert f"in {fooled} of 40 trials" in thanks
    # feedback in practice only, and saying the truth
    by_trial = dict(feedback_seen)
    assert sorted(by_trial) == sorted(f"Practice {i} of 10" for i in range(1, 11)), feedback_seen
    for i, a in enumerate(answers[:10]):
        text = by_trial[f"Practice {i + 1} of 10"]
        assert text == "Correct" if a["chosen"] == a["real_side"] else text.startswith("Wrong"), (i, text)
    # every pair decoded, both images in one box, on screen for about the set time
    assert len(pairs_shown) == 50 and all(p["complete"] for p in pairs_shown)
    assert all(p["sizes"][0][0] == 24 and p["sizes"][0][1:] == p["sizes"][1][1:] for p in pairs_shown)
    assert all(40 <= p["shown"] < 1000 for p in pairs_shown), [p.get("shown") for p in pairs_shown]
    image = Image.open(shot).convert("L")
    low, high = image.getextrema()
    assert high - low > 50, "the screenshot is blank"
