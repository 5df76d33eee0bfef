"""The emulated phone's sandbox: its mounts, the user its shells and file transfers run as, and
device paths resolved inside it.

* Mounts (`setup_mounts`, in the daemon's private mount namespace): this host's /usr, /bin,
  /lib*, /etc and exposed paths read-only (every submount too), /sys read-only, a minimal /dev
  (a tmpfs with null, zero, full, random, urandom bound in and a private /dev/shm), a fresh
  /proc for the phone's own pid namespace (hidepid: a shell sees no process of another user),
  /system read-only. Nothing of the host is writable; /data, /tmp and /sdcard are the sandbox's
  own directories.
* Users (`SandboxUser`): started as root, shells run as nobody (65534) — setgroups([]),
  setresgid, setresuid, PR_SET_NO_NEW_PRIVS — chrooted into the sandbox; sync services
  (push/pull/list/stat) run their file-system calls under that user's fsuid/fsgid.
* Paths (`Sandbox.resolve`): a device path is walked one component at a time from a descriptor
  of the sandbox root (openat with O_NOFOLLOW; symlinks are read and followed inside the root,
  ".." stops at it), and the writable-path check is made on where the path resolves, not on
  what was asked for. A component swapped for a symlink between the walk and the open is
  refused by O_NOFOLLOW / O_EXCL instead of followed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import posixpath
import re
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sdk.devices.errors import EmulatorError

#: Device paths the host may write through sync (the rest of the sandbox is read-only).
WRITABLE = ("/data", "/tmp", "/sdcard")
#: The unprivileged user a root-started phone runs its shells and sync services as.
NOBODY = 65534
#: Device nodes of the minimal /dev.
DEV_NODES = ("null", "zero", "full", "random", "urandom")
_MAX_SYMLINKS = 40
_PR_SET_NO_NEW_PRIVS = 38
_KEPT_FLAGS = ("nodev", "noexec", "noatime", "nodiratime", "relatime", "strictatime")

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(EmulatorError):
    """The sandbox could not be set up (a mount failed): the daemon must not start."""


@dataclass(frozen=True)
class SandboxUser:
    """Who sandboxed shells and sync calls run as; None fields: the daemon's own user."""

    uid: int | None
    gid: int | None

    @classmethod
    def for_this_process(cls, uid: int = NOBODY) -> SandboxUser:
        """nobody when this process may switch to it (root, or a user namespace that maps it);
        else the invoking user (a non-root phone: its shells can do what that user can)."""
        if os.geteuid() == 0 and _mapped(uid, "uid_map") and _mapped(uid, "gid_map"):
            return cls(uid, uid)
        return cls(None, None)

    @property
    def drops(self) -> bool:
        return self.uid is not None

    def become(self) -> None:
        """In a child between fork and exec: this user for good, no way back up."""
        if self.uid is not None and self.gid is not None:
            os.setgroups([])
            os.setresgid(self.gid, self.gid, self.gid)
            os.setresuid(self.uid, self.uid, self.uid)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")

    @contextlib.contextmanager
    def files(self) -> Iterator[None]:
        """File-system calls of this thread as this user (setfsuid/setfsgid: the kernel drops
        CAP_DAC_OVERRIDE and friends while the fsuid is not 0). No await inside."""
        if self.uid is None or self.gid is None:
            yield
            return
        old_gid = _libc.setfsgid(self.gid)
        old_uid = _libc.setfsuid(self.uid)
        try:
            yield
        finally:
            _libc.setfsuid(old_uid)
            _libc.setfsgid(old_gid)


def _mapped(uid: int, table: str) -> bool:
    """Whether `uid` exists in this process's user namespace (/proc/self/uid_map)."""
    try:
        lines = Path(f"/proc/self/{table}").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        inside, _outside, count = (int(x) for x in line.split())
        if inside <= uid < inside + count:
            return True
    return False


@dataclass
class Resolved:
    """A device path resolved inside the sandbox: `name` in the directory `dir_fd`."""

    path: str           #: where it resolved, as a device path ("/data/local/tmp/x")
    dir_fd: int         #: the parent directory (O_PATH; close() it)
    name: str           #: the last component ("." for the sandbox root itself)
    _fds: list[int]

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sandbox:
    """The phone's file system: device paths resolved inside the sandbox root."""

    def __init__(self, root: Path, env: dict[str, str], user: SandboxUser | None = None):
        self.root = root.resolve()
        self.env = env
        self.user = user or SandboxUser(None, None)
        self.root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.root_fd)

    def resolve(self, device_path: str, *, follow_last: bool = True,
                make_parents: bool = False) -> Resolved:
        """Walk `device_path` inside the root, following symlinks there (at most 40), creating
        missing parent directories when `make_parents` (only where the result is writable).
        Raises OSError (ENOENT, ELOOP, ENOTDIR, EACCES, EROFS...) like the kernel would."""
        todo = [p for p in device_path.split("/") if p and p != "."]
        stack: list[tuple[str, int]] = []
        hops = 0
        try:
            while todo:
                part = todo.pop(0)
                if part == "..":
                    if stack:
                        os.close(stack.pop()[1])
                    continue
                here = stack[-1][1] if stack else self.root_fd
                last = not todo
                try:
                    st = os.stat(part, dir_fd=here, follow_symlinks=False)
                except FileNotFoundError:
                    if last:
                        break
                    if not make_parents:
                        raise
                    where = _join([name for name, _ in stack] + [part])
                    if not writable(where):
                        raise OSError(errno.EROFS, "Read-only file system", where) from None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o775, dir_fd=here)
                    todo.insert(0, part)
                    continue
                if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                    hops += 1
                    if hops > _MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, "Too many levels of symbolic links",
                                      device_path)
                    target = os.readlink(part, dir_fd=here)
                    if target.startswith("/"):
                        for _, fd in stack:
                            os.close(fd)
                        stack = []
                    todo = [p for p in target.split("/") if p and p != "."] + todo
                    continue
                if last:
                    break
                fd = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=here)
                stack.append((part, fd))
            else:
                part = "."  # the path names a directory reached by the walk (or the root)
        except BaseException:
            for _, fd in stack:
                os.close(fd)
            raise
        names = [name for name, _ in stack]
        dir_fd = stack[-1][1] if stack else self.root_fd
        path = _join(names if part == "." else [*names, part])
        return Resolved(path, dir_fd, part, [fd for _, fd in stack])

    def shell_argv(self, command: str | None) -> list[str]:
        return ["/system/bin/sh", "-c", command] if command else ["/system/bin/sh"]

    def enter(self) -> None:  # runs in the child between fork and exec
        """Chroot into the sandbox, then become the sandbox user for good."""
        os.chroot(self.root)
        os.chdir("/")
        self.user.become()


def writable(device_path: str) -> bool:
    """Whether a (resolved) device path is in the phone's writable storage."""
    path = posixpath.normpath("/" + device_path.lstrip("/"))
    return any(path == w or path.startswith(w + "/") for w in WRITABLE)


def _join(names: list[str]) -> str:
    return "/" + "/".join(names)


# ---------------------------------------------------------------------------- mounts
def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SandboxError(f"adbd: mount {' '.join(args)} failed: {result.stderr.strip()}")


def _mounts_under(target: Path) -> list[tuple[str, list[str]]]:
    """(mount point, per-mount options) of the mounts at or below `target`, parents first."""
    found: dict[str, list[str]] = {}
    prefix = str(target)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if point == prefix or point.startswith(prefix + "/"):
            found[point] = fields[5].split(",")
    return sorted(found.items(), key=lambda item: len(item[0]))


def bind_read_only(source: str, target: Path) -> None:
    """Bind `source` (with its submounts) at `target`, every one of those mounts read-only."""
    if os.path.isdir(source):
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(exist_ok=True)
    _mount("--rbind", source, str(target))
    for point, options in _mounts_under(target):
        # keep the flags a user namespace may have locked (nodev, noexec, atime), add ro
        kept = [o for o in options if o in _KEPT_FLAGS]
        _mount("-o", ",".join(["remount", "bind", "ro", "nosuid", *kept]), point)


def _bind_node(source: str, target: Path) -> None:
    target.touch(exist_ok=True)
    _mount("--bind", source, str(target))


def setup_dev(root: Path) -> None:
    """A minimal /dev: a tmpfs holding the harmless device nodes and a private /dev/shm."""
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    _mount("-t", "tmpfs", "-o", "size=64k,mode=0755,nosuid,noexec", "edgesdk-dev", str(dev))
    for node in DEV_NODES:
        _bind_node(f"/dev/{node}", dev / node)
    (dev / "shm").mkdir()
    _mount("-t", "tmpfs", "-o", "size=64m,mode=1777,nosuid,nodev", "edgesdk-shm",
           str(dev / "shm"))
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        (dev / name).symlink_to(target)
    _mount("-o", "remount,ro,nosuid,noexec", str(dev))


def setup_proc(root: Path) -> bool:
    """A fresh /proc for this process's pid namespace (only when this process is its init:
    the phone's processes, never the host's). False, and an empty /proc, when not possible."""
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    if os.getpid() != 1:
        return False
    for hide in ("invisible", "2"):
        try:
            _mount("-t", "proc", "-o", f"hidepid={hide},nosuid,nodev,noexec", "proc", str(proc))
            return True
        except SandboxError:
            continue
    return False


def setup_mounts(root: Path, *, storage_bytes: int | None, expose: list[str]) -> bool:
    """Bind this host's system directories into the sandbox read-only, /sys read-only, a
    minimal /dev, a fresh /proc (returns whether it could), the exposed paths read-only, a tmpfs
    /data of `storage_bytes` when asked, and make /system read-only. Only ever called inside a
    private mount namespace: nothing leaks to the host."""
    _mount("--make-rprivate", "/")
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc"):
        host = Path("/") / name
        target = root / name
        if host.is_symlink():
            if not target.is_symlink():
                target.symlink_to(os.readlink(host))
        elif host.is_dir():
            bind_read_only(str(host), target)
    bind_read_only("/sys", root / "sys")
    setup_dev(root)
    fresh_proc = setup_proc(root)
    if storage_bytes:
        _mount("-t", "tmpfs", "-o", f"size={int(storage_bytes)},mode=0771,nosuid,nodev",
               "edgesdk-data", str(root / "data"))
    (root / "data" / "local" / "tmp").mkdir(parents=True, exist_ok=True)
    os.chmod(root / "data" / "local" / "tmp", 0o1777)
    for path in expose:
        real = os.path.realpath(path)
        bind_read_only(real, root / real.lstrip("/"))
        if os.path.abspath(path) != real and not (root / path.lstrip("/")).exists():
            link = root / path.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(real)
    bind_read_only(str(root / "system"), root / "system")
    return fresh_proc
