"""Runs p2p commands on damaged inputs in one process and reports how each ended, as JSON lines.

Usage: python damage_worker.py CASES_DIR RUN_TEMPLATE_DIR. Every *.safetensors in CASES_DIR goes
through `inspect`, `translate` and `run --resume`; every *.toml through `validate`. The peak
resident memory of the whole process is reported last.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import traceback
from pathlib import Path

from typer.testing import CliRunner

from p2pcore.cli import app
from p2pcore.errors import P2PError


def outcome(args: list[str]) -> dict:
    result = CliRunner().invoke(app, args)
    exc = result.exception
    if exc is None or isinstance(exc, SystemExit):
        return {"code": result.exit_code, "kind": "exit"}
    if isinstance(exc, P2PError):
        return {"code": 2, "kind": "p2p", "message": exc.message}
    return {"code": 1, "kind": type(exc).__name__,
            "trace": "".join(traceback.format_exception(exc))[-2000:]}


def main() -> None:
    cases, template = Path(sys.argv[1]), Path(sys.argv[2])
    image = template / "input.png"
    for case in sorted(cases.glob("*.safetensors")):
        report = {"case": case.name}
        report["inspect"] = outcome(["inspect", str(case)])
        report["translate"] = outcome(["translate", str(case), str(image), str(cases / f"{case.stem}.png"),
                                       "--device", "cpu"])
        run = cases / f"run_{case.stem}"
        (run / "checkpoints").mkdir(parents=True)
        shutil.copy(template / "recipe.toml", run / "recipe.toml")
        if case.is_symlink() or case.is_fifo():
            (run / "checkpoints" / "latest.safetensors").symlink_to(case.absolute())
        else:
            shutil.copy(case, run / "checkpoints" / "latest.safetensors")
        report["resume"] = outcome(["run", "--resume", "--out", str(run), "--quiet"])
        print(json.dumps(report), flush=True)
    for case in sorted(cases.glob("*.toml")):
        print(json.dumps({"case": case.name, "validate": outcome(["validate", str(case)])}), flush=True)
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


if __name__ == "__main__":
    main()
