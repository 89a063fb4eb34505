"""Python programs run in forks of one process that imported their heavy modules once.

The peer tier runs real programs (`llamafactory-cli export`, the chart's launcher training with
LLaMA-Factory, the config checker `harness.peer`), each in a process of its own as a pod runs
it. Importing torch, transformers, PEFT, DeepSpeed and LLaMA-Factory costs about 10 s of CPU per
process, most of each run. A server imports them once; each program then runs in a fork of it:
its own process, with its own argv, environment, working directory, standard streams (the
client's own, passed over the socket) and exit status, which starts with those modules imported.
What differs from `python ARGS...`: a preloaded module read the environment when the server
imported it, so the server is started with the environment the programs are given.

  forkserver.py serve SOCKET MODULE...  import the MODULEs, then listen on SOCKET (which appears
                                        only then)
  forkserver.py run SOCKET ARGS...      `python ARGS...` in a fork of the server (ARGS: a script
                                        and its arguments, -m MODULE ..., or -c CODE ...);
                                        exits with its status (128+N when killed by signal N)

The client is this file run by path, so it imports nothing heavy; when it dies (a test's time
limit), the program it started is killed. `Server` below starts and stops a server by its PID; a
server whose starter died ends within a second."""

from __future__ import annotations

import atexit
import importlib
import io
import json
import os
import runpy
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

_HEADER = struct.Struct("!I")


def _send(sock: socket.socket, data: dict, fds: list[int] = ()) -> None:
    body = json.dumps(data).encode()
    socket.send_fds(sock, [_HEADER.pack(len(body)) + body], list(fds))


def _recv(sock: socket.socket, nfds: int = 0) -> tuple[dict | None, list[int]]:
    data, fds, _, _ = socket.recv_fds(sock, 1 << 16, nfds)
    if not data:
        return None, fds
    while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
        more = sock.recv(1 << 16)
        if not more:
            raise ConnectionError("forkserver: the message ended early")
        data += more
    return json.loads(data[_HEADER.size : _HEADER.size + _HEADER.unpack_from(data)[0]]), fds


def _status(wait_status: int) -> int:
    return 128 + os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else os.WEXITSTATUS(wait_status)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _streams(unbuffered: bool) -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    """sys.stdin, stdout and stderr over fds 0-2, buffered as python buffers them (-u: unbuffered)."""

    def writer(fd: int, line_buffering: bool) -> io.TextIOWrapper:
        raw = io.FileIO(fd, "w", closefd=False)
        binary = raw if unbuffered else io.BufferedWriter(raw)
        errors = "backslashreplace" if fd == 2 else "strict"
        return io.TextIOWrapper(binary, "utf-8", errors, line_buffering=line_buffering, write_through=unbuffered)

    stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), "utf-8")
    return stdin, writer(1, os.isatty(1)), writer(2, True)


def _program(request: dict, fds: list[int]) -> None:
    """In the fork that is the program: become `python ARGS...` and exit with its status."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdin, sys.stdout, sys.stderr = _streams(bool(os.environ.get("PYTHONUNBUFFERED")))
    args, code = request["args"], 0
    try:
        if args[0] == "-m":
            sys.argv, sys.path[0] = [args[1], *args[2:]], os.getcwd()
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif args[0] == "-c":
            sys.argv, sys.path[0] = ["-c", *args[2:]], ""
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - python -c
        else:
            sys.argv, sys.path[0] = list(args), os.path.dirname(os.path.abspath(args[0]))
            runpy.run_path(args[0], run_name="__main__")
    except SystemExit as e:
        code = _exit_code(e)
    except BaseException:  # noqa: BLE001 - what python prints for an uncaught exception
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _runner(conn: socket.socket, listener: socket.socket) -> None:
    """In the fork that serves one client: fork the program, wait for it, send its status; kill
    it when the client goes away first."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    request, fds = _recv(conn, 3)
    if request is None or len(fds) != 3:
        os._exit(2)
    pid = os.fork()
    if pid == 0:
        conn.close()
        listener.close()
        _program(request, fds)
    for fd in fds:
        os.close(fd)
    while True:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        readable, _, _ = select.select([conn], [], [], 0.05)
        if readable and not conn.recv(1):  # the client is gone
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os._exit(0)
    _send(conn, {"status": _status(wait_status)})
    os._exit(0)


def serve(path: str, modules: list[str]) -> None:
    for module in modules:
        importlib.import_module(module)
    if threading.active_count() != 1:
        sys.exit(f"forkserver: importing {modules} started threads {threading.enumerate()}; a fork would not copy them")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the runners are reaped by the kernel
    os.rename(path + ".tmp", path)  # ready: the socket appears when it listens
    parent = os.getppid()
    listener.settimeout(1)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # whoever started it is gone (a killed test run)
                os.unlink(path)
                return
            continue
        conn.settimeout(None)
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            _runner(conn, listener)
        conn.close()


def client(path: str, args: list[str]) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        _send(sock, {"args": args, "env": dict(os.environ), "cwd": os.getcwd()}, [0, 1, 2])
        reply, _ = _recv(sock)
    if reply is None:
        print("forkserver: the server ended the run without a status", file=sys.stderr)
        return 255
    return reply["status"]


class Server:
    """A forkserver started with `env` (the environment its programs are given: what a preloaded
    module read at import comes from here) after importing `modules`; stopped by its PID."""

    def __init__(self, socket_path: str, modules: list[str], env: dict[str, str], timeout: float = 300):
        if len(os.fsencode(socket_path)) > 100:
            raise ValueError(f"forkserver: the socket path {socket_path} is too long for a Unix socket: give it a shorter one")
        self.socket_path, self.log = socket_path, socket_path + ".log"
        self.env = dict(env)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "serve", socket_path, *modules], env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while not os.path.exists(socket_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.log) as log:
                    raise RuntimeError(f"forkserver did not start (importing {modules}): {log.read()[-3000:]}")
            time.sleep(0.05)

    def command(self, *args: str) -> list[str]:
        """The command line that runs `python ARGS...` in a fork of this server."""
        return [sys.executable, __file__, "run", self.socket_path, *args]

    def run(self, *args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
        """subprocess.run of `python ARGS...` in a fork, in the server's environment updated by `env`."""
        return subprocess.run(self.command(*args), env={**self.env, **(env or {})}, **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "run":
        sys.exit(client(sys.argv[2], sys.argv[3:]))
    else:
        sys.exit(__doc__)
