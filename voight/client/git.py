"""Git branch and commit from the `.git` files, without running git.

A subprocess costs more than the whole hook. Handles plain repositories, worktrees and
submodules (`.git` is a file `gitdir: <path>`; a worktree's refs live in its `commondir`),
loose refs and `packed-refs`, and detached HEADs (branch None).
"""

import os


def info(cwd: str | None) -> dict | None:
    """`{"branch": str | None, "sha": str | None}` for the repository containing `cwd`."""
    if not cwd:
        return None
    git_dir = _find_git_dir(os.path.abspath(cwd))
    if git_dir is None:
        return None
    head = _read(os.path.join(git_dir, "HEAD"))
    if head is None:
        return None
    common = git_dir
    commondir = _read(os.path.join(git_dir, "commondir"))
    if commondir:
        common = os.path.normpath(os.path.join(git_dir, commondir))
    if head.startswith("ref:"):
        ref = head[4:].strip()
        branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
        return {"branch": branch, "sha": _resolve(ref, git_dir, common)}
    return {"branch": None, "sha": head or None}


def _find_git_dir(path: str) -> str | None:
    while True:
        candidate = os.path.join(path, ".git")
        if os.path.isdir(candidate):
            return candidate
        if os.path.isfile(candidate):
            content = _read(candidate) or ""
            if content.startswith("gitdir:"):
                return os.path.normpath(os.path.join(path, content[7:].strip()))
            return None
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _resolve(ref: str, git_dir: str, common: str) -> str | None:
    for base in (git_dir, common):
        sha = _read(os.path.join(base, *ref.split("/")))
        if sha:
            return sha
    packed = _read(os.path.join(common, "packed-refs")) or ""
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and not line.startswith(("#", "^")):
            return sha
    return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
