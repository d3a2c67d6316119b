"""Ordered parallel map with a progress bar: the loop behind every long CLI command."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def progress_bar(transient: bool = False, shown: bool = True) -> Progress:
    """The bar of long work; ``shown=False`` (library callers, benchmarks) costs nothing."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=transient,
        disable=not shown,
    )


def map_with_progress(
    fn: Callable[[T], R], items: Iterable[T], total: int, description: str, workers: int = 1
) -> Iterator[R]:
    """Yield ``fn(item)`` in order, on ``workers`` processes, while a bar shows progress.

    Results come back in input order whatever the worker count, so output never depends
    on how the work was split. Items are drawn from ``items`` only as workers free up (a few
    per worker ahead), so a lazy ``items`` can depend on what the consumer has seen so far,
    and a consumer that stops early wastes little.
    """
    with progress_bar() as bar:
        task = bar.add_task(description, total=total, rate="")
        results = map(fn, items) if workers <= 1 else _pooled(fn, items, workers)
        for done, result in enumerate(results, 1):
            elapsed = bar.tasks[0].elapsed or 1e-9
            bar.update(task, advance=1, rate=f"{done / elapsed:6.1f}/s")
            yield result


def _pooled(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` on a process pool with at most ``2 * workers`` items in flight."""
    pool = ProcessPoolExecutor(max_workers=workers)
    pending: deque[Future[R]] = deque()
    source = iter(items)
    try:
        while True:
            while len(pending) < 2 * workers and (item := next(source, _END)) is not _END:
                pending.append(pool.submit(fn, item))
            if not pending:
                return
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


_END = object()
