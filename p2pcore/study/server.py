"""The study's local web server: the page, the images of each trial, and the answers, saved as they come.

It listens on 127.0.0.1 only and serves nothing but the page and the paired images: an image is
addressed by session, trial and side, never by a path, so no request can reach another file. It
answers only requests addressed to this machine's own name (a page elsewhere cannot use it through
a rebound DNS name) and only JSON posts (a form on another site cannot post to it).
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from p2pcore.errors import P2PError
from p2pcore.rundir import check_writable
from p2pcore.study.page import render_page
from p2pcore.study.pairs import Pairs, content_type
from p2pcore.study.plan import SIDES, Trial, make_plan, participant_seed
from p2pcore.study.results import FORMAT, VERSION, create_numbered, write_atomic

HOST = "127.0.0.1"
MAX_BODY = 4096
BODY_SECONDS = 10.0
_IMAGE = re.compile(r"/image/([0-9a-f]{32})/([0-9]{1,6})/(left|right)")


@dataclass(frozen=True)
class StudySettings:
    """What every participant gets; `gap_seconds` and `feedback_seconds` pace the page between trials."""

    trials: int = 40
    practice: int = 10
    seconds: float = 1.0
    seed: int = 0
    gap_seconds: float = 0.5
    feedback_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.trials < 1 or self.practice < 0:
            raise P2PError("a study needs at least one trial and no negative number of practice trials",
                           key="--trials", hint="e.g. --trials 40 --practice 10")
        if not 0 < self.seconds <= 60:
            raise P2PError(f"images cannot be shown for {self.seconds:g} s", key="--seconds",
                           hint="give a time above 0 and at most 60 seconds (the paper shows each pair for 1)")
        if self.gap_seconds < 0 or self.feedback_seconds < 0:
            raise P2PError("the pause between trials and the feedback time cannot be negative")


@dataclass
class Session:
    id: str
    participant: int
    path: Path
    plan: list[Trial]
    record: dict[str, Any]
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.answers) == len(self.plan)


class _Refused(Exception):
    """A request the server declines, with its HTTP status."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class StudyServer:
    """Serve a study on 127.0.0.1; each participant's answers go to `<out stem>-NNN.json` beside `out`.

    Use `start()`/`stop()` (or `with`) to run it in a thread, or `serve()` to block until `stop_after`
    sessions are complete, `stop()` is called or Ctrl-C.
    """

    def __init__(self, pairs: Pairs, settings: StudySettings, out: Path, *, port: int = 0,
                 stop_after: int | None = None, on_event: Callable[[str], None] | None = None) -> None:
        self.pairs = pairs
        self.settings = settings
        self.out = out / "results.json" if out.is_dir() else out
        check_writable(self.out.parent, hint="give --out a file name in a writable folder")
        self.stop_after = stop_after
        self.on_event = on_event or (lambda message: None)
        self.sessions: dict[str, Session] = {}
        self.completed: list[Path] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()
        self._stopped = threading.Event()
        try:
            self._httpd = _HTTPServer((HOST, port), _Handler)
        except OSError as exc:
            raise P2PError(f"cannot listen on {HOST}:{port}: {exc.strerror}", key="--port",
                           hint="choose another --port, or --port 0 for any free one") from None
        self._httpd.study = self
        self.port: int = self._httpd.server_address[1]
        self.hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    # running

    def serve(self) -> None:
        """Serve in this thread until stopped; the socket is closed on the way out (Ctrl-C included)."""
        self._serving.set()
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()
            self._stopped.set()

    def start(self) -> StudyServer:
        self._thread = threading.Thread(target=self.serve, name="p2p-study", daemon=True)
        self._thread.start()
        self._serving.wait()
        return self

    def stop(self) -> None:
        if self._serving.is_set() and not self._stopped.is_set():
            self._httpd.shutdown()
        elif not self._serving.is_set():
            self._httpd.server_close()
            self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the server stopped (after `stop_after` sessions) within `timeout` seconds."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> StudyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # what the handler asks

    def page(self, nonce: str) -> bytes:
        s = self.settings
        return render_page(seconds=s.seconds, practice=s.practice, trials=s.trials, nonce=nonce)

    def new_session(self) -> dict[str, Any]:
        s = self.settings
        record = {"format": FORMAT, "version": VERSION, "session": secrets.token_hex(16), "participant": 0,
                  "complete": False, "started": _now(), "finished": None,
                  "settings": asdict(s) | {"pairs": len(self.pairs.names)},
                  "real_dir": str(self.pairs.real_dir), "fake_dir": str(self.pairs.fake_dir),
                  "real_dir_absolute": str(self.pairs.real_dir.resolve()),
                  "fake_dir_absolute": str(self.pairs.fake_dir.resolve()), "answers": []}
        with self._lock:
            try:
                path, number = create_numbered(self.out, record)
            except P2PError as exc:
                self.on_event(f"cannot create a result file beside {self.out}: {exc.message}")
                raise _Refused(HTTPStatus.INTERNAL_SERVER_ERROR, "the session could not be saved") from None
            record["participant"] = number
            plan = make_plan(self.pairs.names, trials=s.trials, practice=s.practice,
                             seed=participant_seed(s.seed, number))
            session = Session(record["session"], number, path, plan, record)
            self.sessions[session.id] = session
        self.on_event(f"participant {number} started -> {path}")
        return {"session": session.id, "participant": number, "trials": s.trials, "practice": s.practice,
                "seconds": s.seconds, "gap_seconds": s.gap_seconds, "feedback_seconds": s.feedback_seconds}

    def image(self, session_id: str, index: int, side: str) -> tuple[bytes, str]:
        session = self.sessions.get(session_id)
        if session is None or index >= len(session.plan):
            raise _Refused(HTTPStatus.NOT_FOUND, "no such image")
        trial = session.plan[index]
        path = self.pairs.real(trial.name) if side == trial.real_side else self.pairs.fake(trial.name)
        try:
            return path.read_bytes(), content_type(trial.name)
        except OSError as exc:
            self.on_event(f"cannot read {path}: {exc.strerror}")
            raise _Refused(HTTPStatus.NOT_FOUND, "the image cannot be read") from None

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        session = self.sessions.get(body.get("session")) if isinstance(body.get("session"), str) else None
        if session is None:
            raise _Refused(HTTPStatus.NOT_FOUND, "no such session")
        index, chosen, rt_ms = body.get("trial"), body.get("chosen"), body.get("rt_ms")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0 or chosen not in SIDES:
            raise _Refused(HTTPStatus.BAD_REQUEST, "an answer needs trial (an integer) and chosen (left or right)")
        if not isinstance(rt_ms, int | float) or isinstance(rt_ms, bool) or not 0 <= rt_ms < 1e9:
            raise _Refused(HTTPStatus.BAD_REQUEST, "rt_ms must be a response time in milliseconds")
        done = 0
        with self._lock:
            if index < len(session.answers) and session.answers[index]["chosen"] == chosen:
                return self._reply(session, index)  # the same answer again: a retried request
            if session.complete:
                raise _Refused(HTTPStatus.CONFLICT, "this session is complete")
            if index != len(session.answers):
                raise _Refused(HTTPStatus.CONFLICT, f"expected the answer to trial {len(session.answers)}")
            trial = session.plan[index]
            session.answers.append({"trial": index, "practice": trial.practice, "image": trial.name,
                                    "real_side": trial.real_side, "chosen": chosen, "rt_ms": round(rt_ms)})
            record = session.record | {"answers": session.answers, "complete": session.complete}
            if session.complete:
                record["finished"] = _now()
            try:
                write_atomic(session.path, record)
            except P2PError as exc:
                session.answers.pop()
                self.on_event(f"cannot save {session.path}: {exc.message}")
                raise _Refused(HTTPStatus.INTERNAL_SERVER_ERROR, "the answer could not be saved") from None
            reply = self._reply(session, index)
            if session.complete:
                self.completed.append(session.path)
                done = len(self.completed)
        if session.complete:
            self.on_event(f"participant {session.participant} finished: chose the generated image in "
                          f"{reply['fooled']} of {reply['judged']} trials -> {session.path}")
            if self.stop_after is not None and done >= self.stop_after:
                threading.Thread(target=self._httpd.shutdown, daemon=True).start()
        return reply

    def _reply(self, session: Session, index: int) -> dict[str, Any]:
        answer = session.answers[index]
        reply: dict[str, Any] = {"trial": index, "practice": answer["practice"], "complete": session.complete}
        if answer["practice"]:
            reply |= {"correct": answer["chosen"] == answer["real_side"], "real_side": answer["real_side"]}
        if session.complete:
            judged = [a for a in session.answers if not a["practice"]]
            reply |= {"judged": len(judged), "fooled": sum(a["chosen"] != a["real_side"] for a in judged)}
        return reply


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a class of participants opening the page at once is queued, not reset
    study: StudyServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "p2p-study"
    sys_version = ""
    timeout = BODY_SECONDS  # a client that stops sending (a body shorter than its Content-Length) frees its thread

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: the server reports sessions through `on_event`."""

    def do_GET(self) -> None:
        self._respond(self._get)

    def do_POST(self) -> None:
        self._respond(self._post)

    def _respond(self, route: Callable[[str], None]) -> None:
        try:
            if self.headers.get("Host") not in self.server.study.hosts:
                raise _Refused(HTTPStatus.FORBIDDEN, "this server answers only at its own address")
            route(urlsplit(self.path).path)
        except _Refused as refused:
            self._send(refused.status, str(refused).encode(), "text/plain; charset=utf-8")

    def _get(self, path: str) -> None:
        if path == "/":
            nonce = secrets.token_urlsafe(16)
            policy = (f"default-src 'none'; img-src 'self' data:; style-src 'nonce-{nonce}'; "
                      f"script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                      "frame-ancestors 'none'")
            self._send(HTTPStatus.OK, self.server.study.page(nonce), "text/html; charset=utf-8",
                       {"Content-Security-Policy": policy})
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif match := _IMAGE.fullmatch(path):
            data, kind = self.server.study.image(match[1], int(match[2]), match[3])
            self._send(HTTPStatus.OK, data, kind)
        else:
            raise _Refused(HTTPStatus.NOT_FOUND, "not found")

    def _post(self, path: str) -> None:
        routes = {"/api/session": lambda body: self.server.study.new_session(),
                  "/api/answer": self.server.study.answer}
        if path not in routes:
            raise _Refused(HTTPStatus.NOT_FOUND, "not found")
        reply = routes[path](self._json_body())
        self._send(HTTPStatus.OK, json.dumps(reply).encode(), "application/json")

    def _json_body(self) -> dict[str, Any]:
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            raise _Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON")
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required") from None
        if not 0 <= length <= MAX_BODY:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the body is too large")
        try:
            data = self.rfile.read(length)
        except OSError:  # the socket's timeout: the body never arrived in full
            self.close_connection = True
            raise _Refused(HTTPStatus.REQUEST_TIMEOUT, "the body did not arrive") from None
        try:
            body = json.loads(data or b"{}")
        except (ValueError, RecursionError):  # not JSON, nested past the parser's depth, an integer too long
            raise _Refused(HTTPStatus.BAD_REQUEST, "the body is not JSON a study answers") from None
        if not isinstance(body, dict):
            raise _Refused(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return body

    def _send(self, status: HTTPStatus, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": kind, "Content-Length": str(len(body)), "Cache-Control": "no-store",
                            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
