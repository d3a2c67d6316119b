"""Ordered parallel map with a progress bar: the loop behind every long CLI command."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def progress_bar(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=transient,
    )


def map_with_progress(
    fn: Callable[[T], R], items: Iterable[T], total: int, description: str, workers: int = 1, chunksize: int = 0
) -> Iterator[R]:
    """Yield ``fn(item)`` in order, on ``workers`` processes, while a bar shows progress.

    Results come back in input order whatever the worker count, so output never depends
    on how the work was split. A consumer that stops early cancels what has not started;
    small ``chunksize`` keeps that waste small.
    """
    with progress_bar() as bar:
        task = bar.add_task(description, total=total, rate="")
        if workers <= 1:
            results: Iterable[R] = map(fn, items)
            pool = None
        else:
            pool = ProcessPoolExecutor(max_workers=workers)
            chunksize = chunksize or max(1, min(16, total // (workers * 4)))
            results = pool.map(fn, items, chunksize=chunksize)
        try:
            for done, result in enumerate(results, 1):
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, advance=1, rate=f"{done / elapsed:6.1f}/s")
                yield result
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
