"""An emulated Arm board: a real OpenSSH `sshd` on loopback whose Arm binaries run under qemu.

Nothing about SSH is mocked: the board is this machine's own sshd, started privately on an
ephemeral port with freshly generated host and user keys, key login only (no passwords), and a
config file of its own. What is emulated is the CPU: the board's device config carries an
`exec_prefix` (`qemu-aarch64-static -cpu max`) that runs its ABI's binaries. A Python runner on
the board is this host's Python (x86_64): runners report the machine they really ran on.

    with EmulatedBoard(arch="aarch64") as board:
        device = open_device(board.device_config())

With `storage_bytes`, the board's work directory is a tmpfs of that size in a private mount
namespace (needs root or unprivileged user namespaces): a full disk is a real ENOSPC.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sdk.devices.config import DeviceConfig, RunnerConfig
from sdk.devices.emulated.qemu import ARCHS, qemu_command
from sdk.devices.errors import EmulatorError


def find_sshd() -> str:
    for candidate in (shutil.which("sshd"), "/usr/sbin/sshd", "/usr/local/sbin/sshd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EmulatorError("OpenSSH's sshd is not installed: apt-get install openssh-server "
                        "(`make setup` does this when run as root)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, comment: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f",
                    str(path)], check=True, stdin=subprocess.DEVNULL)


def _can_unshare() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-m", *(["-r"] if os.getuid() else []), "true"],
        capture_output=True).returncode == 0


class EmulatedBoard:
    """A loopback sshd pretending to be an Arm board. Start with `with` or `start()`."""

    def __init__(self, *, arch: str = "aarch64", cpu: str | None = None, name: str | None = None,
                 root: str | os.PathLike[str] | None = None, storage_bytes: int | None = None,
                 python: str | None = sys.executable, user: str | None = None,
                 sftp: bool = True):
        if arch not in ARCHS:
            raise EmulatorError(f"unknown arch {arch!r}; emulated boards are {sorted(ARCHS)}")
        self.arch = arch
        self.cpu = cpu
        self.name = name or f"board-{arch}"
        self.user = user or getpass.getuser()
        self.storage_bytes = storage_bytes
        self.python = python
        self.sftp = sftp  # False: a board without an SFTP server (dropbear, busybox images)
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(
            tempfile.mkdtemp(prefix=f"edgesdk-{self.name}-"))
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.root / "sshd.log"

    # ------------------------------------------------------------------ files
    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @property
    def tmpdir(self) -> Path:
        """The board user's $TMPDIR: the default workdir (`{tmp}/edgesdk-{uid}`) goes here."""
        return self.root / "tmp"

    @property
    def client_key(self) -> Path:
        return self.root / "client" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "client" / "known_hosts"

    @property
    def host_key(self) -> Path:
        return self.root / "etc" / "ssh_host_ed25519_key"

    def host_key_line(self) -> str:
        """The known_hosts line for this board's host key."""
        pub = (self.host_key.with_suffix(".pub")).read_text().split()
        return f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n"

    def _write_config(self) -> Path:
        etc = self.root / "etc"
        config = etc / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {etc / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}",
            "StrictModes no",
            "UsePAM no",
            "PermitUserEnvironment no",
            "AllowTcpForwarding yes",
            *(["Subsystem sftp internal-sftp"] if self.sftp else []),
            "MaxStartups 64",
            "MaxSessions 64",
            "LogLevel VERBOSE",
            # the board's user has a home of its own: the host user's shell start-up files
            # (bash sources ~/.bashrc for every SSH command; pyenv's init there costs ~0.3 s)
            # are not the board's; its $TMPDIR (where the default workdir goes) is private too
            f"SetEnv HOME={self.root / 'home'} TMPDIR={self.tmpdir}",
            "",
        ]))
        return config

    # ------------------------------------------------------------------ life cycle
    def start(self) -> EmulatedBoard:
        sshd = find_sshd()
        qemu_command(self.arch, self.cpu)  # fails early and clearly when qemu is missing
        for sub in ("etc", "client", "work", "home", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o700)  # a private workdir, as edgesdk requires of every device
        if not self.host_key.exists():
            keygen(self.host_key, f"{self.name}-host")
            keygen(self.client_key, f"edgesdk@{self.name}")
        (self.root / "etc" / "authorized_keys").write_text(
            self.client_key.with_suffix(".pub").read_text())
        if os.getuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # OpenSSH's privsep directory
        last = ""
        for _ in range(5):  # the ephemeral port can be taken between choosing and binding it
            self.port = free_port()
            config = self._write_config()
            # sshd runs under a small shell that stops it when this process goes away (a
            # crashed test leaves no board behind) and forwards SIGTERM
            sshd_line = " ".join(_q(c) for c in [sshd, "-D", "-e", "-f", str(config)])
            script = (f"{sshd_line} & child=$!; trap 'kill $child 2>/dev/null; exit 0' TERM INT; "
                      f"while kill -0 {os.getpid()} 2>/dev/null && kill -0 $child 2>/dev/null; "
                      "do sleep 1; done; kill $child 2>/dev/null")
            command = ["sh", "-c", script]
            if self.storage_bytes:
                if not _can_unshare():
                    raise EmulatorError("storage_bytes needs a private mount namespace (root, "
                                        "or unprivileged user namespaces)")
                script = (f"mount -t tmpfs -o size={int(self.storage_bytes)},mode=0700 "
                          "edgesdk-board "
                          f"{_q(self.workdir)} && {script}")
                command = ["unshare", "-m", "--propagation", "private",
                           *(["-r"] if os.getuid() else []), "sh", "-c", script]
            log = open(self._log, "ab")  # noqa: SIM115 - sshd writes to it while it runs
            self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=log, start_new_session=True)
            log.close()
            if self._wait_ready():
                (self.known_hosts).write_text(self.host_key_line())
                return self
            last = self._log.read_text(errors="replace")[-2000:]
            self._terminate()
        raise EmulatorError(f"sshd did not start for {self.name}: {last}")

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", int(self.port or 0)), 0.5) as s:
                    s.settimeout(1.0)
                    if s.recv(8).startswith(b"SSH-"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        descendants = _descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        # SSH sessions run in sessions of their own (setsid): end every process sshd started
        for pid in descendants:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        self._terminate()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def drop_connections(self) -> int:
        """Cut every open SSH connection (like pulling the cable); the board stays up."""
        if self._proc is None:
            return 0
        # our process is the watchdog shell; the sshd listener is its child, and every
        # connection is a child of the listener
        listeners = [pid for pid in _children(self._proc.pid) if "sshd" in _cmdline(pid)]
        count = 0
        for listener in listeners:
            for pid in _children(listener):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    count += 1
        return count

    def __enter__(self) -> EmulatedBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ how to reach it
    @property
    def abi(self) -> str:
        return ARCHS[self.arch].abi

    def device_config(self, name: str | None = None, **changes: object) -> DeviceConfig:
        """The DeviceConfig that reaches this board (its own known_hosts and key)."""
        if self.port is None:
            raise EmulatorError(f"{self.name} is not started")
        config = DeviceConfig(
            name=name or self.name, transport="ssh",
            address=f"{self.user}@127.0.0.1:{self.port}", abi=self.abi,
            exec_prefix=tuple(qemu_command(self.arch, self.cpu)),
            workdir=str(self.workdir), identity_file=str(self.client_key),
            known_hosts=str(self.known_hosts), ssh_config=os.devnull,
            runner=RunnerConfig(python=self.python), retries=2, connect_timeout=10.0,
            description=f"emulated {self.arch} board: OpenSSH on loopback, {self.abi} binaries "
                        "through qemu-user; Python runners are this host's Python")
        return config.replace(**changes) if changes else config


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def _q(text: object) -> str:
    import shlex

    return shlex.quote(str(text))
