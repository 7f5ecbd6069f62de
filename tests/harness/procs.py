"""The process table as /proc shows it, for tests that look for what the daemon started."""

from __future__ import annotations

import os
from pathlib import Path


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: fields follow the last ')'.
    return text[text.rindex(")") + 2 :].split()


def parent_map() -> dict[int, int]:
    """Every live (non-zombie) process and its parent."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields and fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    return parents


def children_map() -> dict[int, list[int]]:
    """Every live process's live children."""
    kids: dict[int, list[int]] = {}
    for pid, parent in parent_map().items():
        kids.setdefault(parent, []).append(pid)
    return kids


def descendants(pid: int) -> list[int]:
    kids, out, todo = children_map(), [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def argv_of(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []
