"""Reading the markdown tables the benchmark scripts print, for their tests."""

from typing import List


def body_rows(out: str, header_word: str, columns: int) -> List[List[str]]:
    """The first `columns` cells (stripped) of each table row of `out`, but the header row (the one
    holding `header_word`) and the separator."""
    return [[c.strip() for c in line.split("|")[1:columns + 1]] for line in out.splitlines()
            if line.startswith("| ") and header_word not in line]  # fmt: skip
