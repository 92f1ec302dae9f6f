"""Progress bars of a run: tqdm in the process that runs, or drawn by the parent for workers."""

from __future__ import annotations


class Progress:
    """A tqdm bar, or (in a worker process) messages to the parent's bars through ``queue``.

    Parameters
    ----------
    total : float
        Work units.
    enabled : bool
        Draw anything.
    desc : str
        Bar label.
    """

    def __init__(self, total: float, enabled, desc: str):
        self.bar = None
        self.queue = None
        self.desc = desc
        if enabled is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="step", leave=True)
        elif enabled:  # a queue: the parent process draws the bar
            self.queue = enabled
            self.queue.put(("open", desc, total, None))

    def update(self, n=1, text=None):
        """Advance the bar.

        Parameters
        ----------
        n : float
            Work units done.
        text : str, optional
            Shown after the bar (e.g. the current phase).
        """
        if self.bar is not None:
            if text:
                self.bar.set_postfix_str(text)
            self.bar.update(n)
        elif self.queue is not None:
            self.queue.put(("update", self.desc, n, text))

    def close(self):
        """Close the bar (or tell the parent to)."""
        if self.bar is not None:
            self.bar.close()
        elif self.queue is not None:
            self.queue.put(("close", self.desc, 0, None))


def draw_worker_progress(queue):
    """Parent side of the workers' progress: one bar per condition, until a None arrives.

    Parameters
    ----------
    queue : multiprocessing.Queue
        Messages from the workers.
    """
    from tqdm.auto import tqdm

    bars = {}
    while True:
        msg = queue.get()
        if msg is None:
            break
        kind, desc, n, text = msg
        if kind == "open":
            bars[desc] = tqdm(total=n, desc=desc, unit="step", leave=True, position=len(bars))
        elif desc in bars:
            if text:
                bars[desc].set_postfix_str(text)
            bars[desc].update(n)
            if kind == "close":
                bars[desc].refresh()
    for b in bars.values():
        b.close()
