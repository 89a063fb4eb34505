"""The peer tier's forkserver (tests/harness/forkserver.py): a program run in a fork of it is a
process of its own, as `python ARGS...` is, only with the server's modules already imported."""

import os
import signal
import subprocess
import sys
import time

import pytest

from harness import forkserver
from harness.forkserver import Server

PROGRAM = """
import json, os, sys
import decimal
print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": os.environ.get("FS_TEST"), "pid": os.getpid(),
                  "ppid": os.getppid(), "stdin": sys.stdin.read(), "path0": sys.path[0], "name": __name__,
                  "touched": getattr(decimal, "touched", False)}))
decimal.touched = True
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("fs")
    s = Server(str(d / "sock"), ["decimal"], env={**os.environ, "FS_TEST": "server"})
    yield s
    s.stop()
    assert s.proc.poll() is not None and not os.path.exists(s.socket_path)


def run(server, *args, **kwargs):
    return server.run(*args, capture_output=True, text=True, timeout=60, **kwargs)


def test_a_script_runs_as_its_own_process(server, tmp_path):
    import json

    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    first = run(server, str(script), "3", input="in", cwd=tmp_path, env={"FS_TEST": "request"})
    assert first.returncode == 3 and first.stderr == "to stderr\n"
    got = json.loads(first.stdout)
    assert got["argv"] == [str(script), "3"] and got["cwd"] == str(tmp_path) and got["env"] == "request"
    assert got["stdin"] == "in" and got["path0"] == str(tmp_path) and got["name"] == "__main__"
    assert got["pid"] not in (os.getpid(), server.proc.pid)
    # What one run changed in a preloaded module is gone in the next: each starts from the server.
    second = json.loads(run(server, str(script)).stdout)
    assert got["touched"] is False and second["touched"] is False
    assert second["pid"] != got["pid"]


def test_module_and_code_forms_and_exit_statuses(server):
    assert run(server, "-c", "import sys; print(sys.argv); sys.exit('why')", "a").stdout == "['-c', 'a']\n"
    assert run(server, "-c", "raise SystemExit('why')").returncode == 1
    failed = run(server, "-c", "1/0")
    assert failed.returncode == 1 and "ZeroDivisionError" in failed.stderr
    assert run(server, "-m", "json.tool", input='{"a":1}').stdout == '{\n    "a": 1\n}\n'
    killed = run(server, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert killed.returncode == 128 + signal.SIGKILL


def test_a_dead_client_takes_its_program_with_it(server, tmp_path):
    pidfile = tmp_path / "pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    client = subprocess.Popen(server.command("-c", code), env=server.env)
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    client.kill()
    client.wait()
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the program outlived its client")


def test_a_server_that_cannot_import_says_so(tmp_path):
    with pytest.raises(RuntimeError, match="(?s)forkserver did not start.*No module named 'no_such_module'"):
        Server(str(tmp_path / "sock"), ["no_such_module"], env=dict(os.environ), timeout=60)


def test_the_client_imports_nothing_heavy():
    out = subprocess.run(
        [sys.executable, "-X", "importtime", forkserver.__file__],
        capture_output=True,
        text=True,
        timeout=60,
    )
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"torch", "transformers", "llamafactory", "harness"}, sorted(imported)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_server_ends_when_its_starter_is_killed(tmp_path):
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time; from harness.forkserver import Server\n"
            f"s = Server({str(tmp_path / 'sock')!r}, ['decimal'], env=dict(os.environ)); print(s.proc.pid, flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    pid = int(starter.stdout.readline())
    assert alive(pid)
    starter.kill()
    starter.wait()
    starter.stdout.close()
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "the server outlived the process that started it"
    assert not (tmp_path / "sock").exists()
