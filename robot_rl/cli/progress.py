"""One progress bar over episodes, for the verbs that run many (record, eval, eval ros=true)."""

from __future__ import annotations


class EpisodeBar:
    """A tqdm bar over ``total`` episodes: ``bar(note)`` counts one episode and shows ``note``;
    ``bar.on_episode(index, success)`` counts one and shows the running success rate."""

    def __init__(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="episode", dynamic_ncols=True)
        self.wins: list[bool] = []

    def __call__(self, note: str) -> None:
        self.bar.set_postfix_str(note)
        self.bar.update(1)

    def on_episode(self, index: int, success: bool) -> None:
        self.wins.append(bool(success))
        self(f"success {sum(self.wins) / len(self.wins):.0%}")

    def close(self) -> None:
        self.bar.close()
