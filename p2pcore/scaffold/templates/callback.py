"""`p2p new plugin --kind callback`: a CSV logger of a run's figures."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="a CSV logger: every figure the run logs, one row each, in a file of the run directory",
    entry='''
from p2pcore.api import BuildContext, CallbackParams, Field, hookimpl


class $NameParams(CallbackParams):
    file: str = Field("figures.csv", pattern=r"^[^/\\\\]+$", description="the CSV file's name in the run directory")


def build(params: $NameParams, ctx: BuildContext) -> Any:
    """A CSV logger: every figure the run logs, one row each, in a file of the run directory."""
    from $name.logger import CsvLogger

    return CsvLogger(params.file)


@hookimpl
def p2p_register_callbacks(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    module='''
import csv
from collections.abc import Mapping
from pathlib import Path

from p2pcore.api import Callback, RunInfo

HEADER = ("step", "epoch", "figure", "value")


class CsvLogger(Callback):
    """Appends a row (step, epoch, figure, value) for each figure logged at a step, an epoch end or an
    evaluation; a resumed run appends to the same file. The file is opened for each write, so nothing is
    left open when a run stops."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.path: Path | None = None
        self.step = 0

    def on_run_start(self, run: RunInfo) -> None:
        self.path = Path(run.run_dir) / self.file
        self.step = run.start_step
        if not self.path.exists():
            self._write([HEADER])

    def on_step(self, step: int, epoch: int, figures: Mapping[str, float]) -> None:
        self.step = step
        self._rows(epoch, figures)

    def on_epoch_end(self, epoch: int, figures: Mapping[str, float]) -> None:
        self._rows(epoch, figures)

    def on_evaluation(self, epoch: int, figures: Mapping[str, float]) -> None:
        self._rows(epoch, figures)

    def _rows(self, epoch: int, figures: Mapping[str, float]) -> None:
        if figures:
            self._write([(self.step, epoch, key, repr(float(value))) for key, value in sorted(figures.items())])

    def _write(self, rows: list[tuple]) -> None:
        if self.path is not None:
            with self.path.open("a", newline="", encoding="utf-8") as out:
                csv.writer(out).writerows(rows)
''',
    module_name="logger",
    checks='''
def test_callback_contract(p2p_host, tmp_path):
    check_callback(p2p_host, "$name", run_dir=tmp_path)
    lines = (tmp_path / "figures.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,figure,value" and lines.count(lines[0]) == 1  # a resumed run appends
    assert any(",eval/psnr," in line for line in lines) and any(",G/l1," in line for line in lines)


def test_callback_file_is_a_name_in_the_run_directory(p2p_host):
    with pytest.raises(AssertionError, match="refused the parameters"):
        check_callback(p2p_host, "$name", file="../outside.csv")
''',
    recipe={"callbacks": {"csv": {"name": "$name"}}},
)
