"""Translating many files: reading and writing in background threads while the networks run.

Files are read `workers` at a time ahead of the networks; decoded images wait in groups of one size
until a group holds what one call translates (the translator's batching rule decides how many share
a forward pass), or until too many wait, when the oldest group goes as it is. Outputs are written by
`workers` threads. Which images share a pass never changes an output, so results do not depend on
timing. A bad file is reported through `on_error` and the rest are translated; with `fail_fast`
(or for a single file) the first bad file in file order stops the run: the images before it are still
translated and written, then its error is raised.

Without tiling, an image whose untiled pass would not fit in memory (`p2pcore.engine.infer.fitting`) is
translated in tiles that do, said once per image size through `on_note`; an allocation that fails all
the same is that image's one-screen error, with the hint to tile.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from p2pcore.engine.infer.fitting import Fitting, allocation_failure, out_of_memory
from p2pcore.engine.infer.tiling import Tiling
from p2pcore.engine.infer.translate import Translator
from p2pcore.errors import P2PError

Job = tuple[Path, Path]


@dataclass
class Outcome:
    """What a run of `translate_files` did."""

    written: int = 0
    failed: list[P2PError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Files per second, failed ones included (they cost a read too)."""
        return (self.written + len(self.failed)) / self.seconds if self.seconds > 0 else 0.0


class _Stop(Exception):
    """The first failure under fail-fast: `index` in file order."""

    def __init__(self, index: int, error: P2PError) -> None:
        super().__init__(error.message)
        self.index, self.error = index, error


def default_workers() -> int:
    """Reader and writer threads: a few, never more than the CPUs."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class _Run:
    translator: Translator
    jobs: Sequence[Job]
    fail_fast: bool
    on_progress: Callable[[int], None]
    on_error: Callable[[P2PError], None]
    writers: ThreadPoolExecutor
    fitting: Fitting
    on_note: Callable[[str], None] = lambda note: None
    outcome: Outcome = field(default_factory=Outcome)
    writes: deque[tuple[int, Path, Future]] = field(default_factory=deque)
    noted: set[tuple[int, int]] = field(default_factory=set)

    def fail(self, index: int, error: P2PError) -> None:
        if self.fail_fast or len(self.jobs) == 1:
            raise _Stop(index, error)
        self.outcome.failed.append(error)
        self.on_error(error)
        self.on_progress(1)

    def translate(self, group: list[tuple[int, torch.Tensor]]) -> None:
        """Translate one same-size group and queue its writes; a failing group is retried image by image
        so the error names its file."""
        try:
            outs = self.translated(group)
        except P2PError as error:
            if len(group) > 1:
                for item in group:
                    self.translate([item])
                return
            index = group[0][0]
            self.fail(index, error.with_location(file=str(self.jobs[index][0])))
            return
        for (index, _), out in zip(group, outs, strict=True):
            source, target = self.jobs[index]
            self.writes.append((index, source, self.writers.submit(self.translator.write, out, target,
                                                                   source=source)))

    def translated(self, group: list[tuple[int, torch.Tensor]]) -> list[torch.Tensor]:
        """The group's translations: in tiles that fit where an untiled pass would not, in smaller ones after
        an allocation fails (unless --tile chose them); a failure that tiling cannot help is a P2PError."""
        translator = self.translator
        height, width = translator.sizing.model_size(*group[0][1].shape[-2:])
        chosen = translator.tiling  # --tile, which is never changed
        tiling: Tiling | None = None  # the one that fits, tried in its place when --tile is not given
        try:
            tiling = self.tiled(group, height, width) if chosen is None and self.fitting.worth_probing(height,
                                                                                                        width) else None
            while True:
                try:
                    return translator.translate_many([image for _, image in group], tiling)
                except Exception as error:
                    retry = chosen is None and allocation_failure(error) and self.fitting.worth_probing(height, width)
                    smaller = self.fitting.smaller(height, width, tiling) if retry else None
                    if smaller is None:
                        raise
                self._free()
                self.on_note(f"{self.jobs[group[0][0]][0].name}: out of memory "
                             f"{f'in {tiling.size} px tiles' if tiling else 'untiled'}: trying {smaller.size} px tiles")
                tiling = smaller
        except Exception as error:
            if not allocation_failure(error):
                raise
            used = tiling or chosen
            raise out_of_memory(height, width, tiled=used.size if used is not None else None) from None

    def _free(self) -> None:
        """Give back what the failed pass's allocator cached before the next try."""
        if self.translator.device.type == "cuda":
            torch.cuda.empty_cache()

    def tiled(self, group: list[tuple[int, torch.Tensor]], height: int, width: int) -> Tiling | None:
        """The tiling for this group where an untiled pass would not fit (said once per size)."""
        found = self.fitting.tiles_for(height, width, min(len(group), self.translator.per_forward()))
        if found is None:
            return None
        tiling, why = found
        if (height, width) not in self.noted:
            self.noted.add((height, width))
            self.on_note(f"{self.jobs[group[0][0]][0].name}: {why}: translated in {tiling.size} px tiles (so "
                         "are other images of this size; --tile SIZE chooses the size)")
        return tiling

    def reap(self, *, wait: bool = False, keep: int | None = None) -> None:
        """Account for finished writes in file order: all of them with `wait`; with `keep`, wait until at
        most that many are queued (outputs waiting to be written are held in memory)."""
        while self.writes and (wait or self.writes[0][2].done() or (keep is not None and len(self.writes) > keep)):
            index, _, future = self.writes.popleft()
            try:
                future.result()
            except P2PError as error:
                self.fail(index, error)
                continue
            self.outcome.written += 1
            self.on_progress(1)


def translate_files(translator: Translator, jobs: Sequence[Job], *, fail_fast: bool = False,
                    workers: int | None = None, on_progress: Callable[[int], None] = lambda n: None,
                    on_error: Callable[[P2PError], None] = lambda e: None,
                    on_note: Callable[[str], None] = lambda note: None) -> Outcome:
    """Translate every (input, output) job; failures are collected unless `fail_fast` (see the module)."""
    workers = workers or default_workers()
    start = time.perf_counter()
    readers = ThreadPoolExecutor(workers, thread_name_prefix="p2p-read")
    writers = ThreadPoolExecutor(workers, thread_name_prefix="p2p-write")
    run = _Run(translator, jobs, fail_fast, on_progress, on_error, writers, translator.fitting(), on_note)
    groups: dict[tuple, list[tuple[int, torch.Tensor]]] = {}
    try:
        try:
            _read_and_translate(run, readers, groups, workers)
        except _Stop as stop:
            _finish_before(run, groups, stop)
        run.reap(wait=True)
    except _Stop as stop:
        raise stop.error from None
    finally:
        readers.shutdown(wait=False, cancel_futures=True)
        writers.shutdown(wait=True, cancel_futures=True)
    run.outcome.seconds = time.perf_counter() - start
    return run.outcome


def _read_and_translate(run: _Run, readers: ThreadPoolExecutor, groups: dict[tuple, list[tuple[int, torch.Tensor]]],
                        workers: int) -> None:
    translator = run.translator
    # images held ahead of the networks: enough to fill a call; two large images at most when tiling
    ahead = 2 if translator.tiling is not None else max(2 * translator.images_per_call(), workers + 1)
    pending: deque[tuple[int, Future]] = deque()
    upcoming = iter(enumerate(run.jobs))
    for index, (source, _) in upcoming:
        pending.append((index, readers.submit(translator.read, source)))
        if len(pending) >= ahead:
            break
    while pending:
        index, future = pending.popleft()
        following = next(upcoming, None)
        if following is not None:
            pending.append((following[0], readers.submit(translator.read, following[1][0])))
        try:
            image = future.result()
        except P2PError as error:
            run.fail(index, error)
            continue
        key = (tuple(image.shape), image.dtype)
        groups.setdefault(key, []).append((index, image))
        if len(groups[key]) >= translator.images_per_call():
            run.translate(groups.pop(key))
        elif sum(len(g) for g in groups.values()) > ahead:
            run.translate(groups.pop(min(groups, key=lambda k: groups[k][0][0])))
        run.reap(keep=ahead)
    for key in sorted(groups, key=lambda k: groups[k][0][0]):
        run.translate(groups.pop(key))


def _finish_before(run: _Run, groups: dict[tuple, list[tuple[int, torch.Tensor]]], stop: _Stop) -> None:
    """Fail-fast: translate and write what was read before the failing file, then stop with its error
    (or with an earlier file's, should one fail now)."""
    earlier = sorted((item for group in groups.values() for item in group if item[0] < stop.index),
                     key=lambda item: item[0])
    groups.clear()
    by_size: dict[tuple, list[tuple[int, torch.Tensor]]] = {}
    for item in earlier:
        by_size.setdefault((tuple(item[1].shape), item[1].dtype), []).append(item)
    try:
        for group in by_size.values():
            run.translate(group)
        run.reap(wait=True)
    except _Stop as earlier_stop:
        if earlier_stop.index < stop.index:
            raise earlier_stop from None
    raise stop
