"""``python -m bench.hotspots FILE [N]``: the top lines of a py-spy ``--format raw`` profile.

Each line of the file is ``frame;frame;...;leaf COUNT`` with frames like
``function (path/file.py:LINE)``. Prints the N lines with the most samples where the
program was *in* that line (self) and the N with the most samples *under* it (total).
"""

from __future__ import annotations

import sys
from collections import Counter


def summarise(path: str, top: int = 15) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            samples += n
            frames = stack.split(";")
            own[frames[-1]] += n
            for frame in set(frames):
                total[frame] += n
    out = [f"{samples} samples", "", "self (%):"]
    out += [f"  {100 * n / samples:5.1f}  {frame}" for frame, n in own.most_common(top)]
    out += ["", "total (%):"]
    out += [f"  {100 * n / samples:5.1f}  {frame}" for frame, n in total.most_common(top)]
    return "\n".join(out)


if __name__ == "__main__":
    print(summarise(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 15))
