"""The order index agrees with a plain sorted list under any mix of changes."""

from __future__ import annotations

import random

import pytest

from collector import index as index_module
from collector.index import OrderIndex


def entry(moment: int, version: int, name: str) -> tuple:
    return (moment, version, "ns", name, object())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_adds_and_removes_match_a_sorted_list(monkeypatch, seed):
    # Small chunks force many splits and empty chunks in a short test.
    monkeypatch.setattr(index_module, "CHUNK_SIZE", 4)
    rng = random.Random(seed)
    index = OrderIndex()
    live: dict[str, tuple] = {}

    for step in range(3000):
        name = f"e{rng.randrange(300)}"
        if name in live and rng.random() < 0.3:
            index.remove(live.pop(name))
        else:
            if name in live:
                index.remove(live.pop(name))
            new = entry(rng.randrange(50), step, name)
            live[name] = new
            index.add(new)

    expected = sorted(live.values(), key=lambda item: item[:4])
    assert list(index.oldest()) == expected
    assert list(index.newest()) == expected[::-1]
    assert len(index) == len(live)


def test_removing_an_absent_entry_raises_key_error():
    index = OrderIndex()
    index.add(entry(1, 1, "a"))
    with pytest.raises(KeyError):
        index.remove(entry(1, 1, "b"))
    with pytest.raises(KeyError):
        index.remove(entry(9, 9, "z"))


def test_newest_walks_only_as_far_as_asked():
    index = OrderIndex()
    for moment in range(10_000):
        index.add(entry(moment, moment, f"e{moment}"))
    newest = index.newest()
    assert [next(newest)[0] for _ in range(3)] == [9999, 9998, 9997]
