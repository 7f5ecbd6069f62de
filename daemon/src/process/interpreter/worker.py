"""Python worker of one interpreter context of the Daytona toolbox daemon.

Channels (set up by the daemon):
  fd 4  commands from the daemon, one JSON object per line:
        {"id", "code", "envs": {name: value|null} | null, "env": {"set": {..}, "unset": [..]}}
  fd 3  messages to the daemon, one JSON object per line:
        {"type": "ready"} once at start, then per command zero or one
        {"type": "error", "id", "name", "value", "traceback"} and exactly one
        {"type": "control", "id", "text": "completed" | "interrupted"}.
  fd 1, fd 2  plain output. sys.stdout and sys.stderr write to them unbuffered, so output of
        Python code and of subprocesses shares one ordered stream per descriptor, and the
        daemon forwards it as stdout/stderr frames.
Neither protocol descriptor is inherited by subprocesses, and stdin is /dev/null.
"""

import builtins
import io
import json
import os
import signal
import sys

PROTO_FD = 3
COMMAND_FD = 4
# Longest error text sent to the daemon; the daemon bounds protocol lines too.
MAX_ERROR_TEXT = 1 << 20

for _fd in (PROTO_FD, COMMAND_FD):
    os.set_inheritable(_fd, False)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]


class _RawOut(io.RawIOBase):
    """`sys.stdout.buffer`: bytes straight to the descriptor."""

    def __init__(self, fd):
        super().__init__()
        self._fd = fd

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def write(self, b):
        data = bytes(b)
        _write_all(self._fd, data)
        return len(data)


class _TextOut(io.TextIOBase):
    """Unbuffered text stream on a descriptor: every write reaches the pipe at once."""

    def __init__(self, fd, name):
        super().__init__()
        self._fd = fd
        self._name = name
        self._buffer = _RawOut(fd)

    encoding = "utf-8"
    errors = "backslashreplace"
    newlines = None
    line_buffering = False

    @property
    def name(self):
        return self._name

    @property
    def buffer(self):
        return self._buffer

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def isatty(self):
        return False

    def flush(self):
        pass

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not " + type(s).__name__)
        _write_all(self._fd, s.encode("utf-8", "backslashreplace"))
        return len(s)


sys.stdout = sys.__stdout__ = _TextOut(1, "<stdout>")
sys.stderr = sys.__stderr__ = _TextOut(2, "<stderr>")

_builtin_print = builtins.print


def _print(*args, sep=" ", end="\n", file=None, flush=False):
    """print() with one write per call on our streams, so a printed line is one frame."""
    target = sys.stdout if file is None else file
    if isinstance(target, _TextOut) and isinstance(sep, (str, type(None))) and isinstance(end, (str, type(None))):
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        target.write(sep.join(map(str, args)) + end)
        return
    _builtin_print(*args, sep=sep, end=end, file=file, flush=flush)


builtins.print = _print


def _send(msg):
    _write_all(PROTO_FD, (json.dumps(msg) + "\n").encode("utf-8", "backslashreplace"))


def _clip(text):
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "\n[truncated]"


# SIGINT interrupts user code only; between executions it is ignored.
_executing = False


def _on_sigint(signum, frame):
    if _executing:
        raise KeyboardInterrupt


signal.signal(signal.SIGINT, _on_sigint)

_globals = {"__name__": "__main__", "__builtins__": __builtins__}
_FILENAME = "<string>"


def _format_traceback(exc, code):
    lines = code.splitlines()
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            frames.append(tb.tb_lineno)
        tb = tb.tb_next
    head = "%s: %s\n" % (type(exc).__name__, exc)
    if not frames:
        return head
    out = ["Traceback (most recent call last):\n"]
    for n in frames:
        out.append('  File "<stdin>", line %d\n' % n)
        if 0 < n <= len(lines):
            out.append("    %s\n" % lines[n - 1].strip())
    out.append(head)
    return "".join(out)


def _error(cmd_id, exc, code):
    try:
        value = str(exc)
    except BaseException:  # a broken __str__ must not take the worker down
        value = "<unprintable %s>" % type(exc).__name__
    try:
        tb = _format_traceback(exc, code)
    except BaseException:
        tb = "%s: %s\n" % (type(exc).__name__, value)
    _send({"type": "error", "id": cmd_id, "name": type(exc).__name__,
           "value": _clip(value), "traceback": _clip(tb)})


def _apply_daemon_env(env):
    """The daemon's current child environment, applied for good (POST /env changes)."""
    if not env:
        return
    for name in env.get("unset") or []:
        os.environ.pop(name, None)
    for name, value in (env.get("set") or {}).items():
        os.environ[name] = value


def _apply_envs(envs):
    """Per-execution variables; returns what to restore afterwards."""
    saved = {}
    for name, value in (envs or {}).items():
        if name not in saved:
            saved[name] = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return saved


def _restore_envs(saved):
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _run(cmd):
    global _executing
    cmd_id = cmd.get("id", "")
    code = cmd.get("code", "")
    outcome = "completed"
    saved = {}
    try:
        try:
            _apply_daemon_env(cmd.get("env"))
            saved = _apply_envs(cmd.get("envs"))
            compiled = compile(code, _FILENAME, "exec")
            _executing = True
            try:
                exec(compiled, _globals)
            finally:
                _executing = False
        except KeyboardInterrupt:
            outcome = "interrupted"
        except SystemExit:
            pass
        except BaseException as exc:  # noqa: BLE001 - everything the user code raises is reported
            _error(cmd_id, exc, code)
        finally:
            _executing = False
            _restore_envs(saved)
    except KeyboardInterrupt:
        # A SIGINT that arrived just as the user code ended.
        outcome = "interrupted"
    _send({"type": "control", "id": cmd_id, "text": outcome})


def main():
    commands = os.fdopen(COMMAND_FD, "rb", buffering=1 << 16)
    _send({"type": "ready"})
    while True:
        try:
            line = commands.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            return
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("command must be a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            _send({"type": "error", "id": "", "name": type(exc).__name__, "value": str(exc),
                   "traceback": "%s: %s\n" % (type(exc).__name__, exc)})
            continue
        _run(cmd)


if __name__ == "__main__":
    main()
