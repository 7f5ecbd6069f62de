"""The /git API (git.md, sdk-0.226.md §3.5, §4.2, §2.6, §2.7; pitfalls.md §F) through the
official SDK (`sandbox.git.*`), against remotes made here: bare repositories over file:// and a
smart-HTTP remote (`git http-backend` behind basic auth, harness/git_http.py) on loopback.

Needs the `git` CLI (to prepare remotes, to check results, and for http-backend).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from daytona import (
    DaytonaBadRequestError,
    DaytonaConflictError,
    DaytonaError,
    DaytonaGitAuthFailedError,
    DaytonaGitBranchExistsError,
    DaytonaGitBranchNotFoundError,
    DaytonaGitDirtyWorktreeError,
    DaytonaGitMergeConflictError,
    DaytonaGitPushRejectedError,
    DaytonaGitRepoNotFoundError,
    DaytonaGitTransportFailedError,
    DaytonaInvalidFilePathError,
    DaytonaNotFoundError,
)

from harness import http
from harness.git_http import GitHttpServer

GIT = shutil.which("git")
PASSWORD = "pw-" + uuid.uuid4().hex  # unique, so a grep for it cannot match by accident
USERNAME = "agent-" + uuid.uuid4().hex[:8]


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    assert GIT, "the git CLI is required by these tests"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd or "/"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Remote Author",
        "GIT_AUTHOR_EMAIL": "remote@example.com",
        "GIT_COMMITTER_NAME": "Remote Author",
        "GIT_COMMITTER_EMAIL": "remote@example.com",
    }
    r = subprocess.run([GIT, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {r.stderr}")
    return r.stdout.strip()


def make_remote(base: Path, name: str = "origin.git", files: dict[str, str] | None = None) -> Path:
    """A bare repository with two commits on `main` and a `feature` branch."""
    bare = base / name
    git("init", "-q", "--bare", "-b", "main", str(bare))
    seed = base / (name + "-seed")
    git("clone", "-q", str(bare), str(seed))
    git("checkout", "-q", "-b", "main", cwd=seed)
    for rel, text in (files or {"README.md": "hello\n", "src/app.py": "print(1)\n"}).items():
        (seed / rel).parent.mkdir(parents=True, exist_ok=True)
        (seed / rel).write_text(text)
    git("add", ".", cwd=seed)
    git("commit", "-q", "-m", "first", cwd=seed)
    (seed / "README.md").write_text("hello\nworld\n")
    git("commit", "-q", "-am", "second", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    git("checkout", "-q", "-b", "feature", cwd=seed)
    (seed / "feature.txt").write_text("f\n")
    git("add", ".", cwd=seed)
    git("commit", "-q", "-m", "feature work", cwd=seed)
    git("push", "-q", "origin", "feature", cwd=seed)
    shutil.rmtree(seed)
    return bare


def remote_push_commit(bare: Path, branch: str, filename: str, text: str) -> str:
    """Another user pushes a commit to `branch` of `bare`; returns its hash."""
    tmp = bare.parent / ("other-" + uuid.uuid4().hex[:6])
    git("clone", "-q", "-b", branch, str(bare), str(tmp))
    (tmp / filename).write_text(text)
    git("add", ".", cwd=tmp)
    git("commit", "-q", "-m", f"remote {filename}", cwd=tmp)
    git("push", "-q", "origin", branch, cwd=tmp)
    sha = git("rev-parse", "HEAD", cwd=tmp)
    shutil.rmtree(tmp)
    return sha


@pytest.fixture
def work(daemon, tmp_path) -> Path:
    d = daemon.workdir / ("t-" + uuid.uuid4().hex[:8])
    d.mkdir()
    return d


def status_of(sandbox, path: Path) -> dict[str, tuple[str, str]]:
    st = sandbox.git.status(str(path))
    return {f.name: (f.staging.value, f.worktree.value) for f in st.file_status}


# ------------------------------------------------------------------------------------ clone


def test_clone_file_remote_status_and_branches(sandbox, daemon, work, tmp_path):
    bare = make_remote(tmp_path)
    dest = work / "c"
    sandbox.git.clone(f"file://{bare}", str(dest))
    assert (dest / "README.md").read_text() == "hello\nworld\n"
    assert git("rev-parse", "HEAD", cwd=dest) == git("rev-parse", "main", cwd=bare)
    st = sandbox.git.status(str(dest))
    assert st.current_branch == "main"
    assert st.file_status == []
    assert (st.branch_published, st.ahead, st.behind, st.upstream) == (True, 0, 0, "origin/main")
    assert not st.detached
    b = sandbox.git.branches(str(dest))
    assert (b.branches, b.current) == (["main"], "main")
    # A relative path resolves against the daemon's work dir.
    rel = dest.relative_to(daemon.workdir)
    assert sandbox.git.status(str(rel)).current_branch == "main"


def test_status_after_clone_sees_same_size_edits_and_untracked_dirs(sandbox, work, tmp_path):
    """Status skips files whose stat data matches the index: an edit that keeps the size and
    lands right after the index was written, a deletion, a file turned directory and untracked
    files in new and tracked directories must all still be reported as `git status` does."""
    files = {f"d{i % 3}/s{i % 2}/f{i}.txt": f"file {i}\n" for i in range(40)}
    bare = make_remote(tmp_path, files={"README.md": "hello\n", **files})
    dest = work / "c"
    sandbox.git.clone(f"file://{bare}", str(dest))
    assert sandbox.git.status(str(dest)).file_status == []
    (dest / "d0/s0/f0.txt").write_text("FILE 0\n")  # same size
    (dest / "d1/s1/f1.txt").unlink()
    (dest / "README.md").unlink()
    (dest / "README.md").mkdir()
    (dest / "README.md" / "inner.txt").write_text("x\n")
    (dest / "new/deep").mkdir(parents=True)
    (dest / "new/deep/a.txt").write_text("a\n")
    (dest / "d2/s0/b.txt").write_text("b\n")
    want = {
        "d0/s0/f0.txt": ("Unmodified", "Modified"),
        "d1/s1/f1.txt": ("Unmodified", "Deleted"),
        "README.md": ("Unmodified", "Deleted"),
        "README.md/inner.txt": ("Untracked", "Untracked"),
        "new/deep/a.txt": ("Untracked", "Untracked"),
        "d2/s0/b.txt": ("Untracked", "Untracked"),
    }
    assert status_of(sandbox, dest) == want
    cli = sorted(line.split(maxsplit=1)[1] for line in git("status", "--porcelain", "-uall", cwd=dest).splitlines())
    assert cli == sorted(want)
    # A staged addition outside any changed work-tree file.
    git("add", "d2/s0/b.txt", cwd=dest)
    assert status_of(sandbox, dest)["d2/s0/b.txt"] == ("Added", "Unmodified")


def test_clone_branch_commit_and_depth(sandbox, work, tmp_path):
    bare = make_remote(tmp_path)
    sandbox.git.clone(f"file://{bare}", str(work / "b"), branch="feature")
    assert sandbox.git.status(str(work / "b")).current_branch == "feature"
    assert (work / "b" / "feature.txt").exists()
    # Single-branch: main was not fetched.
    assert git("branch", "-r", cwd=work / "b") == "origin/feature"

    first = git("rev-list", "--max-parents=0", "main", cwd=bare)
    sandbox.git.clone(f"file://{bare}", str(work / "c"), commit_id=first)
    st = sandbox.git.status(str(work / "c"))
    assert (st.current_branch, st.detached) == ("HEAD", True)
    assert git("rev-parse", "HEAD", cwd=work / "c") == first
    assert (work / "c" / "README.md").read_text() == "hello\n"

    # libgit2 cannot fetch shallow from a local remote: the full history comes instead.
    sandbox.git.clone(f"file://{bare}", str(work / "d"), depth=1)
    assert git("rev-list", "--count", "HEAD", cwd=work / "d") == "2"


def test_clone_errors(sandbox, work, tmp_path):
    bare = make_remote(tmp_path)
    with pytest.raises(DaytonaGitBranchNotFoundError) as e:
        sandbox.git.clone(f"file://{bare}", str(work / "x"), branch="nope")
    assert e.value.status_code == 404 and e.value.code == "GIT_BRANCH_NOT_FOUND"
    assert not (work / "x").exists(), "a failed clone leaves nothing behind"

    with pytest.raises(DaytonaGitRepoNotFoundError) as e:
        sandbox.git.clone(f"file://{tmp_path}/missing.git", str(work / "y"))
    assert e.value.status_code == 404
    assert not (work / "y").exists()

    sandbox.git.clone(f"file://{bare}", str(work / "z"))
    with pytest.raises(DaytonaConflictError) as e:
        sandbox.git.clone(f"file://{bare}", str(work / "z"))
    assert e.value.status_code == 409
    with pytest.raises(DaytonaBadRequestError):
        sandbox.git.clone(f"file://{bare}", str(work / "w"), depth=-1)
    (work / "occupied").mkdir()
    (work / "occupied" / "f").write_text("x")
    with pytest.raises(DaytonaConflictError):
        sandbox.git.clone(f"file://{bare}", str(work / "occupied"))
    assert (work / "occupied" / "f").read_text() == "x"


def test_clone_commit_not_in_history_is_not_found(sandbox, work, tmp_path):
    bare = make_remote(tmp_path)
    with pytest.raises(DaytonaNotFoundError) as e:
        sandbox.git.clone(f"file://{bare}", str(work / "c"), commit_id="deadbeef" * 5)
    assert e.value.status_code == 404
    assert not (work / "c").exists()


def test_transport_failure_is_502(sandbox, work):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now: connection refused.
    with pytest.raises(DaytonaGitTransportFailedError) as e:
        sandbox.git.clone(f"http://127.0.0.1:{port}/r.git", str(work / "c"))
    assert e.value.status_code == 502


# -------------------------------------------------------------------- add / commit / history


def test_add_commit_status_and_history(sandbox, daemon, work, tmp_path):
    bare = make_remote(tmp_path)
    repo = work / "r"
    sandbox.git.clone(f"file://{bare}", str(repo))
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "new" / "deep").mkdir(parents=True)
    (repo / "new" / "deep" / "a.txt").write_text("a\n")
    (repo / "debug.log").write_text("ignored\n")
    (repo / "README.md").write_text("changed\n")
    (repo / "src" / "app.py").unlink()

    st = status_of(sandbox, repo)
    assert st["new/deep/a.txt"] == ("Untracked", "Untracked"), "untracked dirs are expanded"
    assert st["README.md"] == ("Unmodified", "Modified")
    assert st["src/app.py"] == ("Unmodified", "Deleted")
    assert "debug.log" not in st

    sandbox.git.add(str(repo), ["."])
    st = status_of(sandbox, repo)
    assert st["new/deep/a.txt"] == ("Added", "Unmodified")
    assert st["README.md"] == ("Modified", "Unmodified")
    assert st["src/app.py"] == ("Deleted", "Unmodified")
    assert "debug.log" not in st, "a directory add skips ignored files"
    sandbox.git.add(str(repo), ["debug.log"])
    assert status_of(sandbox, repo)["debug.log"] == ("Added", "Unmodified"), "a named ignored file is staged"
    sandbox.git.add(str(repo), [])

    with pytest.raises(DaytonaError) as e:
        sandbox.git.add(str(repo), ["no-such-file"])
    assert e.value.status_code == 404

    msg = "Change things\n\nwith a body"
    res = sandbox.git.commit(str(repo), msg, "Ann Agent", "ann@example.com")
    assert res.sha == git("rev-parse", "HEAD", cwd=repo)
    assert git("log", "-1", "--format=%an <%ae>|%cn <%ce>", cwd=repo) == "Ann Agent <ann@example.com>|Ann Agent <ann@example.com>"
    assert git("cat-file", "-p", "HEAD", cwd=repo).endswith(msg), "message stored as given"
    assert status_of(sandbox, repo) == {}
    st = sandbox.git.status(str(repo))
    assert (st.ahead, st.behind) == (1, 0)

    with pytest.raises(DaytonaConflictError):
        sandbox.git.commit(str(repo), "nothing", "A", "a@x")
    empty = sandbox.git.commit(str(repo), "empty", "A", "a@x", allow_empty=True)
    assert git("rev-parse", "HEAD~1", cwd=repo) == res.sha and empty.sha != res.sha
    with pytest.raises(DaytonaBadRequestError):
        sandbox.git.commit(str(repo), "", "A", "a@x")

    r = http.get(daemon.url, f"/git/history?path={quote(str(repo))}")
    assert r.status == 200, r.describe()
    hist = r.json()
    assert [h["message"] for h in hist[:2]] == ["empty", msg]
    assert hist[1]["hash"] == res.sha and hist[1]["author"] == "Ann Agent" and hist[1]["email"] == "ann@example.com"
    assert len(hist) == 4 and hist[-1]["message"] == "first\n"
    assert hist[0]["timestamp"][:4].isdigit() and "T" in hist[0]["timestamp"]


def test_not_a_repository(sandbox, daemon, work):
    with pytest.raises(DaytonaGitRepoNotFoundError) as e:
        sandbox.git.status(str(work))
    assert e.value.status_code == 404
    with pytest.raises(DaytonaGitRepoNotFoundError):
        sandbox.git.branches(str(work / "missing"))
    r = http.get(daemon.url, "/git/status")
    assert r.status == 400 and r.json()["code"] == "BAD_REQUEST"
    r = http.post_json(daemon.url, "/git/commit", {"path": str(work)})
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST_BODY"


# -------------------------------------------------------------------- branches / checkout


def test_branches_and_checkout(sandbox, work, tmp_path):
    bare = make_remote(tmp_path)
    repo = work / "r"
    sandbox.git.clone(f"file://{bare}", str(repo))
    git("branch", "master", cwd=repo)  # the Go quirk would silently switch to it

    sandbox.git.create_branch(str(repo), "topic/x")
    b = sandbox.git.branches(str(repo))
    assert b.current == "topic/x" and b.branches == ["main", "master", "topic/x"]
    with pytest.raises(DaytonaGitBranchExistsError) as e:
        sandbox.git.create_branch(str(repo), "main")
    assert e.value.status_code == 409
    with pytest.raises(DaytonaBadRequestError):
        sandbox.git.create_branch(str(repo), "bad..name")

    sandbox.git.checkout_branch(str(repo), "main")
    assert sandbox.git.branches(str(repo)).current == "main"
    for missing in ["nonexistent", "main-old", "origin/main", "abc"]:
        with pytest.raises(DaytonaGitBranchNotFoundError) as e:
            sandbox.git.checkout_branch(str(repo), missing)
        assert e.value.status_code == 404
        assert sandbox.git.branches(str(repo)).current == "main", "never a silent switch"

    # A remote branch with no local branch is checked out as a tracking branch, as git does.
    sandbox.git.checkout_branch(str(repo), "feature")
    st = sandbox.git.status(str(repo))
    assert (st.current_branch, st.upstream) == ("feature", "origin/feature")

    # Detached HEAD through an abbreviated hash.
    first = git("rev-list", "--max-parents=0", "HEAD", cwd=repo)
    sandbox.git.checkout_branch(str(repo), first[:7])
    st = sandbox.git.status(str(repo))
    assert (st.current_branch, st.detached, st.branch_published) == ("HEAD", True, False)
    assert sandbox.git.branches(str(repo)).current is None
    sandbox.git.checkout_branch(str(repo), "main")

    # A local change the checkout would overwrite: 409, nothing touched.
    (repo / "README.md").write_text("local edit\n")
    with pytest.raises(DaytonaGitDirtyWorktreeError) as e:
        sandbox.git.checkout_branch(str(repo), first)
    assert e.value.status_code == 409
    assert (repo / "README.md").read_text() == "local edit\n"
    assert sandbox.git.branches(str(repo)).current == "main"
    # A change that does not conflict is carried along.
    sandbox.git.checkout_branch(str(repo), "topic/x")
    assert (repo / "README.md").read_text() == "local edit\n"

    with pytest.raises(DaytonaConflictError):
        sandbox.git.delete_branch(str(repo), "topic/x")
    sandbox.git.checkout_branch(str(repo), "main")
    sandbox.git.delete_branch(str(repo), "topic/x")
    sandbox.git.delete_branch(str(repo), "topic/x")  # idempotent
    assert "topic/x" not in sandbox.git.branches(str(repo)).branches


# ----------------------------------------------------------------------------- pull / push


def test_pull_and_push_over_file(sandbox, work, tmp_path):
    bare = make_remote(tmp_path)
    a, b = work / "a", work / "b"
    sandbox.git.clone(f"file://{bare}", str(a))
    sandbox.git.clone(f"file://{bare}", str(b))

    (a / "one.txt").write_text("1\n")
    sandbox.git.add(str(a), ["one.txt"])
    sha = sandbox.git.commit(str(a), "one", "A", "a@x").sha
    sandbox.git.push(str(a))
    assert git("rev-parse", "main", cwd=bare) == sha
    assert sandbox.git.status(str(a)).ahead == 0
    sandbox.git.push(str(a))  # up to date is success

    sandbox.git.pull(str(b))
    assert git("rev-parse", "HEAD", cwd=b) == sha and (b / "one.txt").exists()
    sandbox.git.pull(str(b))  # up to date

    # Diverge: the remote moves on, b commits locally.
    remote_push_commit(bare, "main", "remote.txt", "r\n")
    (b / "local.txt").write_text("l\n")
    sandbox.git.add(str(b), ["local.txt"])
    sandbox.git.commit(str(b), "local", "B", "b@x")
    with pytest.raises(DaytonaGitPushRejectedError) as e:
        sandbox.git.push(str(b))
    assert e.value.status_code == 409
    with pytest.raises(DaytonaGitMergeConflictError) as e:
        sandbox.git.pull(str(b))
    assert e.value.status_code == 409
    st = sandbox.git.status(str(b))
    assert (st.ahead, st.behind) == (1, 1)

    # Pull that would overwrite a local change: dirty worktree, nothing changed.
    later = remote_push_commit(bare, "main", "one.txt", "remote version\n")
    git("fetch", "-q", cwd=a)
    (a / "one.txt").write_text("uncommitted\n")
    with pytest.raises(DaytonaGitDirtyWorktreeError):
        sandbox.git.pull(str(a))
    assert (a / "one.txt").read_text() == "uncommitted\n"
    (a / "one.txt").write_text("1\n")
    sandbox.git.pull(str(a), remote="origin", branch="main")
    assert git("rev-parse", "HEAD", cwd=a) == later

    # A new branch pushed with set_upstream becomes tracked.
    sandbox.git.create_branch(str(a), "topic")
    (a / "t.txt").write_text("t\n")
    sandbox.git.add(str(a), ["t.txt"])
    sandbox.git.commit(str(a), "t", "A", "a@x")
    sandbox.git.push(str(a), branch="topic", set_upstream=True)
    assert git("config", "branch.topic.remote", cwd=a) == "origin"
    assert git("config", "branch.topic.merge", cwd=a) == "refs/heads/topic"
    st = sandbox.git.status(str(a))
    assert (st.upstream, st.ahead, st.branch_published) == ("origin/topic", 0, True)
    assert git("rev-parse", "topic", cwd=bare) == git("rev-parse", "HEAD", cwd=a)

    # Missing remote; detached HEAD push.
    with pytest.raises(DaytonaNotFoundError):
        sandbox.git.push(str(a), remote="nope")
    sandbox.git.checkout_branch(str(a), git("rev-parse", "HEAD", cwd=a))
    with pytest.raises(DaytonaNotFoundError):
        sandbox.git.push(str(a))


# ------------------------------------------------------------------- smart HTTP with auth


@pytest.fixture
def http_remote(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    make_remote(root, "repo.git")
    git("config", "http.receivepack", "true", cwd=root / "repo.git")
    with GitHttpServer(root, USERNAME, PASSWORD) as srv:
        yield srv, root


def test_http_clone_pull_push_with_credentials(sandbox, daemon, work, http_remote):
    srv, root = http_remote
    url = srv.url("repo.git")
    errors: list[str] = []

    def expect(exc, fn, *args, **kw):
        with pytest.raises(exc) as e:
            fn(*args, **kw)
        errors.append(str(e.value))
        errors.append(repr(e.value.__cause__))
        return e.value

    e = expect(DaytonaGitAuthFailedError, sandbox.git.clone, url, str(work / "nocreds"))
    assert e.status_code == 401 and e.code == "GIT_AUTH_FAILED"
    e = expect(DaytonaGitAuthFailedError, sandbox.git.clone, url, str(work / "wrong"), username=USERNAME, password=PASSWORD + "x")
    assert e.status_code == 401
    assert not (work / "wrong").exists()
    # A bounded number of attempts, not a loop.
    assert len([r for r in srv.requests if r[2]]) <= 4
    e = expect(DaytonaGitRepoNotFoundError, sandbox.git.clone, srv.url("missing.git"), str(work / "missing"), username=USERNAME, password=PASSWORD)
    assert e.status_code == 404

    sandbox.git.clone(url, str(work / "shallow"), username=USERNAME, password=PASSWORD, depth=1)
    assert git("rev-list", "--count", "HEAD", cwd=work / "shallow") == "1"
    assert (work / "shallow" / ".git" / "shallow").exists()

    repo = work / "c"
    sandbox.git.clone(url, str(repo), username=USERNAME, password=PASSWORD)
    assert (repo / "README.md").exists()
    (repo / "h.txt").write_text("over http\n")
    sandbox.git.add(str(repo), ["h.txt"])
    sha = sandbox.git.commit(str(repo), "http", "A", "a@x").sha
    e = expect(DaytonaGitAuthFailedError, sandbox.git.push, str(repo), username=USERNAME, password="nope-" + PASSWORD)
    e = expect(DaytonaGitAuthFailedError, sandbox.git.push, str(repo))
    sandbox.git.push(str(repo), username=USERNAME, password=PASSWORD)
    assert git("rev-parse", "main", cwd=root / "repo.git") == sha

    remote_push_commit(root / "repo.git", "main", "more.txt", "m\n")
    e = expect(DaytonaGitAuthFailedError, sandbox.git.pull, str(repo), username="x", password=PASSWORD[:-1])
    sandbox.git.pull(str(repo), username=USERNAME, password=PASSWORD)
    assert (repo / "more.txt").exists()

    # Nothing of the secret is left behind: not in the repository (config, FETCH_HEAD,
    # reflogs, packed refs…), not in the daemon's log or output, not in any error text.
    secret = PASSWORD.encode()
    for p in repo.rglob("*"):
        if p.is_file():
            assert secret not in p.read_bytes(), f"password found in {p}"
    assert url == git("config", "remote.origin.url", cwd=repo), "remote URL kept without credentials"
    for p in daemon.log_path.parent.rglob("*"):
        if p.is_file():
            assert secret not in p.read_bytes(), f"password in {p}"
    assert PASSWORD not in daemon.stdout.text() and PASSWORD not in daemon.stderr.text()
    for text in errors:
        assert PASSWORD not in text and PASSWORD[:-1] not in text, text


def test_url_embedded_password_is_redacted_in_errors_and_remotes(sandbox, daemon, work, http_remote):
    srv, root = http_remote
    bad = srv.url("missing.git").replace("http://", f"http://{USERNAME}:{PASSWORD}@")
    with pytest.raises(DaytonaGitRepoNotFoundError) as e:
        sandbox.git.clone(bad, str(work / "m"))
    assert PASSWORD not in str(e.value)
    sandbox.git.init(str(work / "r"))
    sandbox.git.remote_add(str(work / "r"), "origin", srv.url("repo.git").replace("http://", f"http://{USERNAME}:{PASSWORD}@"))
    url = sandbox.git.remote_get(str(work / "r"), "origin")
    assert PASSWORD not in url and f"{USERNAME}:***@" in url


def test_stored_credentials(sandbox, daemon, work, http_remote):
    srv, _ = http_remote
    home = daemon.home
    sandbox.git.dangerously_authenticate(USERNAME, PASSWORD, host=f"127.0.0.1:{srv.port}", protocol="http")
    store = home / ".git-credentials"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert store.read_text().startswith(f"http://{USERNAME}:{PASSWORD}@127.0.0.1:{srv.port}")
    assert sandbox.git.get_config("credential.helper") == "store"
    # The git CLI finds them where it expects them.
    r = subprocess.run(
        [GIT, "credential", "fill"], input=f"protocol=http\nhost=127.0.0.1:{srv.port}\n\n",
        env={"HOME": str(home), "PATH": os.environ["PATH"], "GIT_TERMINAL_PROMPT": "0"},
        capture_output=True, text=True,
    )
    assert f"password={PASSWORD}" in r.stdout, r.stderr
    # And the daemon uses them when a request brings none.
    sandbox.git.clone(srv.url("repo.git"), str(work / "c"))
    assert (work / "c" / "README.md").exists()
    assert PASSWORD.encode() not in (work / "c" / ".git" / "config").read_bytes()
    with pytest.raises(DaytonaBadRequestError):
        sandbox.git.dangerously_authenticate("u\nx", "p")
    # Clean up so other tests see no stored credentials.
    store.unlink()
    subprocess.run([GIT, "config", "--file", str(home / ".gitconfig"), "--unset", "credential.helper"], check=True)


# ------------------------------------------------------------- empty repos, init, remotes


def test_empty_repository_init_and_first_commit(sandbox, work, tmp_path):
    repo = work / "e"
    sandbox.git.init(str(repo), initial_branch="trunk")
    st = sandbox.git.status(str(repo))
    assert (st.current_branch, st.file_status, st.ahead) == ("trunk", [], 0)
    b = sandbox.git.branches(str(repo))
    assert (b.branches, b.current) == ([], "trunk")
    with pytest.raises(DaytonaConflictError):
        sandbox.git.init(str(repo))
    (repo / "f.txt").write_text("x\n")
    assert status_of(sandbox, repo) == {"f.txt": ("Untracked", "Untracked")}
    sandbox.git.add(str(repo), ["f.txt"])
    sandbox.git.commit(str(repo), "root", "A", "a@x")
    assert sandbox.git.branches(str(repo)).branches == ["trunk"]

    sandbox.git.init(str(work / "bare.git"), bare=True)
    assert (work / "bare.git" / "HEAD").exists() and not (work / "bare.git" / ".git").exists()
    # Clone of an empty remote, then a first push to it.
    empty = tmp_path / "empty.git"
    git("init", "-q", "--bare", "-b", "main", str(empty))
    sandbox.git.clone(f"file://{empty}", str(work / "ec"))
    st = sandbox.git.status(str(work / "ec"))
    assert st.file_status == []
    sandbox.git.create_branch(str(work / "ec"), "main")
    (work / "ec" / "a").write_text("a\n")
    sandbox.git.add(str(work / "ec"), ["."])
    sandbox.git.commit(str(work / "ec"), "first", "A", "a@x")
    sandbox.git.push(str(work / "ec"))
    assert git("log", "--format=%s", "main", cwd=empty) == "first"


def test_remotes(sandbox, work, tmp_path):
    bare = make_remote(tmp_path)
    repo = work / "r"
    sandbox.git.init(str(repo), initial_branch="main")
    assert sandbox.git.remotes(str(repo)).remotes == []
    sandbox.git.remote_add(str(repo), "upstream", f"file://{bare}", fetch=True)
    sandbox.git.remote_add(str(repo), "backup", "https://example.invalid/r.git")
    assert [(r.name, r.url) for r in sandbox.git.remotes(str(repo)).remotes] == [
        ("backup", "https://example.invalid/r.git"),
        ("upstream", f"file://{bare}"),
    ]
    assert git("rev-parse", "upstream/main", cwd=repo) == git("rev-parse", "main", cwd=bare)
    with pytest.raises(DaytonaConflictError) as e:
        sandbox.git.remote_add(str(repo), "backup", "https://example.invalid/other.git")
    assert e.value.status_code == 409
    sandbox.git.remote_add(str(repo), "backup", "https://example.invalid/other.git", overwrite=True)
    assert sandbox.git.remote_get(str(repo), "backup") == "https://example.invalid/other.git"
    assert sandbox.git.remote_get(str(repo), "nope") is None
    with pytest.raises(DaytonaGitRepoNotFoundError):
        sandbox.git.remotes(str(work / "none"))


# ------------------------------------------------------------------------------------ config


def test_config_scopes_and_user(sandbox, daemon, work):
    repo = work / "r"
    sandbox.git.init(str(repo))
    assert sandbox.git.get_config("test.unset") is None
    sandbox.git.set_config("test.key", "global value")
    assert sandbox.git.get_config("test.key") == "global value"
    assert git("config", "--file", str(daemon.home / ".gitconfig"), "test.key") == "global value"
    sandbox.git.set_config("test.key", "local value", scope="local", path=str(repo))
    assert sandbox.git.get_config("test.key", scope="local", path=str(repo)) == "local value"
    assert sandbox.git.get_config("test.key") == "global value"
    sandbox.git.configure_user("Loc Al", "loc@al", scope="local", path=str(repo))
    assert git("config", "user.name", cwd=repo) == "Loc Al"
    with pytest.raises(DaytonaBadRequestError):
        sandbox.git.get_config("test.key", scope="local")
    with pytest.raises(DaytonaBadRequestError):
        sandbox.git.set_config("test.key", "v", scope="galaxy")
    with pytest.raises(DaytonaBadRequestError):
        sandbox.git.set_config("nodot", "v")
    with pytest.raises(DaytonaBadRequestError):
        sandbox.git.set_config("test.key", "")


# ---------------------------------------------------------------------------- reset / restore


def test_reset_and_restore(sandbox, work, tmp_path):
    bare = make_remote(tmp_path)
    repo = work / "r"
    sandbox.git.clone(f"file://{bare}", str(repo))
    head = git("rev-parse", "HEAD", cwd=repo)
    parent = git("rev-parse", "HEAD~1", cwd=repo)

    sandbox.git.reset(str(repo), mode="soft", target="HEAD~1")
    assert git("rev-parse", "HEAD", cwd=repo) == parent
    assert status_of(sandbox, repo)["README.md"] == ("Modified", "Unmodified")
    sandbox.git.reset(str(repo))  # mixed, HEAD: unstage
    assert status_of(sandbox, repo)["README.md"] == ("Unmodified", "Modified")
    sandbox.git.reset(str(repo), mode="hard", target=head)
    assert status_of(sandbox, repo) == {} and git("rev-parse", "HEAD", cwd=repo) == head

    (repo / "src" / "app.py").write_text("local\n")
    sandbox.git.reset(str(repo), mode="keep", target=parent)  # app.py did not change between them
    assert git("rev-parse", "HEAD", cwd=repo) == parent
    assert (repo / "src" / "app.py").read_text() == "local\n" and (repo / "README.md").read_text() == "hello\n"
    (repo / "README.md").write_text("dirty\n")
    with pytest.raises(DaytonaGitDirtyWorktreeError):
        sandbox.git.reset(str(repo), mode="keep", target=head)
    with pytest.raises(DaytonaBadRequestError):
        sandbox.git.reset(str(repo), mode="sideways")
    with pytest.raises(DaytonaNotFoundError):
        sandbox.git.reset(str(repo), target="no-such-rev")

    sandbox.git.reset(str(repo), mode="hard", target=head)
    (repo / "README.md").write_text("staged\n")
    sandbox.git.add(str(repo), ["README.md"])
    (repo / "README.md").write_text("worktree\n")
    sandbox.git.restore(str(repo), ["README.md"])  # worktree from the index
    assert (repo / "README.md").read_text() == "staged\n"
    sandbox.git.restore(str(repo), ["README.md"], staged=True)  # index from HEAD, worktree kept
    assert status_of(sandbox, repo)["README.md"] == ("Unmodified", "Modified")
    sandbox.git.restore(str(repo), ["README.md"], source=parent)
    assert (repo / "README.md").read_text() == "hello\n"
    sandbox.git.restore(str(repo), ["README.md"], staged=True, worktree=True)
    assert status_of(sandbox, repo) == {}
    sandbox.git.reset(str(repo), files=["README.md"], target=parent)
    assert status_of(sandbox, repo)["README.md"][0] == "Modified"
    with pytest.raises(DaytonaError) as e:
        sandbox.git.restore(str(repo), ["nope.txt"])
    assert "did not match" in str(e.value)
    with pytest.raises(DaytonaError):
        sandbox.git.restore(str(repo), ["README.md"], staged=False, worktree=False)


# --------------------------------------------------------------------------- old Go clients


def test_strict_go_clients_get_no_new_fields(sandbox, daemon, work, tmp_path):
    bare = make_remote(tmp_path)
    repo = work / "r"
    sandbox.git.clone(f"file://{bare}", str(repo))
    first = git("rev-list", "--max-parents=0", "HEAD", cwd=repo)
    old = {"X-Daytona-Source": "sdk-go", "X-Daytona-SDK-Version": "0.150.0"}
    r = http.get(daemon.url, f"/git/status?path={quote(str(repo))}", headers=old)
    assert r.status == 200 and "upstream" not in r.json() and r.json()["branchPublished"] is True
    assert "upstream" in http.get(daemon.url, f"/git/status?path={quote(str(repo))}").json()
    r = http.get(daemon.url, f"/git/branches?path={quote(str(repo))}", headers=old)
    assert "current" not in r.json()
    sandbox.git.checkout_branch(str(repo), first)
    r = http.get(daemon.url, f"/git/status?path={quote(str(repo))}", headers=old)
    assert "detached" not in r.json() and r.json()["currentBranch"] == "HEAD"
    assert http.get(daemon.url, f"/git/status?path={quote(str(repo))}").json()["detached"] is True


# ------------------------------------------------------- bad input is 4xx, never 5xx (issue 24)

BAD_PATHS = ["/tmp/x\x00y", "/tmp/" + "a" * 300]


def repo_ops(sandbox, path: str):
    """Every SDK git call that takes a repository path, with valid other arguments."""
    g = sandbox.git
    return {
        "status": lambda: g.status(path),
        "branches": lambda: g.branches(path),
        "remotes": lambda: g.remotes(path),
        "add": lambda: g.add(path, ["."]),
        "commit": lambda: g.commit(path, "m", "A", "a@x"),
        "create_branch": lambda: g.create_branch(path, "b"),
        "delete_branch": lambda: g.delete_branch(path, "b"),
        "checkout_branch": lambda: g.checkout_branch(path, "main"),
        "pull": lambda: g.pull(path),
        "push": lambda: g.push(path),
        "reset": lambda: g.reset(path),
        "restore": lambda: g.restore(path, ["f"]),
        "remote_add": lambda: g.remote_add(path, "o", "https://example.invalid/r.git"),
        "init": lambda: g.init(path),
        "clone": lambda: g.clone("https://example.invalid/r.git", path),
    }


@pytest.mark.parametrize("bad", BAD_PATHS, ids=["nul", "long-name"])
def test_bad_paths_are_400_invalid_file_path(sandbox, daemon, bad):
    for name, op in repo_ops(sandbox, bad).items():
        with pytest.raises(DaytonaInvalidFilePathError) as e:
            op()
        assert e.value.status_code == 400, name
        assert "invalid file path" in str(e.value), (name, str(e.value))
    r = http.get(daemon.url, f"/git/history?path={quote(bad)}")
    assert r.status == 400 and r.json()["code"] == "INVALID_FILE_PATH", r.describe()


def test_symlink_loop_is_400_and_survives_a_failed_clone(sandbox, daemon, work):
    loop = work / "loop"
    os.symlink("loop", loop)
    for name, op in repo_ops(sandbox, str(loop)).items():
        with pytest.raises(DaytonaInvalidFilePathError) as e:
            op()
        assert e.value.status_code == 400, name
        assert str(loop) in str(e.value), (name, str(e.value))
    r = http.get(daemon.url, f"/git/history?path={quote(str(loop))}")
    assert r.status == 400 and r.json()["code"] == "INVALID_FILE_PATH", r.describe()
    with pytest.raises(DaytonaInvalidFilePathError):
        sandbox.git.init(str(loop / "sub"))
    assert loop.is_symlink(), "a failed clone never removes what was there"


def test_missing_repository_stays_404(sandbox, work):
    (work / "file").write_text("x")
    for path in [work / "missing", work / "file", work / "file" / "x"]:
        for name, op in repo_ops(sandbox, str(path)).items():
            if name in ("init", "clone"):
                continue
            with pytest.raises(DaytonaGitRepoNotFoundError) as e:
                op()
            assert e.value.status_code == 404, (name, path)


@pytest.mark.parametrize(
    "url, why",
    [
        ("5·^\r?", "control character U+000D"),
        ("5·^?", "no directory exists there"),
        ("https://example.com/my repo.git", "whitespace"),
        ("ftp://example.com/r.git", "unsupported scheme"),
        ("http://", "host is missing"),
        ("http://example.com:99999/r.git", "not a port number"),
        ("git@example.com:r.git", "SSH remotes are not supported"),
    ],
)
def test_unparsable_clone_url_is_400_before_any_attempt(sandbox, work, url, why):
    dest = work / "c"
    with pytest.raises(DaytonaBadRequestError) as e:
        sandbox.git.clone(url, str(dest))
    assert not isinstance(e.value, DaytonaGitTransportFailedError)
    assert e.value.status_code == 400 and e.value.code == "BAD_REQUEST"
    assert why in str(e.value), str(e.value)
    assert not dest.exists() and not dest.is_symlink(), "nothing is created"


def test_clone_from_a_relative_local_path(sandbox, daemon, work):
    bare = make_remote(work)
    rel = bare.relative_to(daemon.workdir)
    sandbox.git.clone(str(rel), str(work / "c"))
    assert git("rev-parse", "HEAD", cwd=work / "c") == git("rev-parse", "main", cwd=bare)
    with pytest.raises(DaytonaBadRequestError) as e:
        sandbox.git.clone(str(rel) + "-missing", str(work / "d"))
    assert "not a URL" in str(e.value)


def test_nul_and_invalid_names_in_other_fields_are_400(sandbox, work):
    repo = work / "r"
    sandbox.git.init(str(repo), initial_branch="main")
    for op in [
        lambda: sandbox.git.create_branch(str(repo), "a\x00b"),
        lambda: sandbox.git.checkout_branch(str(repo), "a\x00b"),
        lambda: sandbox.git.remote_add(str(repo), "a\x00b", "https://example.invalid/r"),
        lambda: sandbox.git.remote_add(str(repo), "o", "https://example.invalid/a\x00b"),
        lambda: sandbox.git.commit(str(repo), "a\x00b", "A", "a@x"),
        lambda: sandbox.git.set_config("a.b", "x\x00y"),
        lambda: sandbox.git.push(str(repo), branch="a..b"),
        lambda: sandbox.git.pull(str(repo), remote="a b"),
        lambda: sandbox.git.init(str(work / "n"), initial_branch="a\x00b"),
    ]:
        with pytest.raises(DaytonaBadRequestError) as e:
            op()
        assert e.value.status_code == 400, str(e.value)
    with pytest.raises(DaytonaInvalidFilePathError):
        sandbox.git.add(str(repo), ["a\x00b"])
