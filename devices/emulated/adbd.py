"""An ADB daemon (the phone side) for emulated phones: `python -m sdk.devices.emulated.adbd`.

It speaks the ADB wire protocol over TCP — CNXN, AUTH (RSA signature check, or accepting a new
public key as the user tapping "Allow" would), OPEN/OKAY/WRTE/CLSE with ADB's one-write-in-flight
flow control — and offers the services a host uses:

* `shell:CMD` (v1: output merged, no exit code), `shell,v2[,raw|pty]:CMD` (stdout, stderr and the
  exit code in v2 packets, stdin from the host), `exec:CMD` (stdout only);
* `sync:` with STAT, LIST, SEND (`path,mode`, DATA chunks, DONE with mtime), RECV, QUIT.

Commands run in a sandbox: `/system/bin/sh -c CMD` chrooted into the sandbox directory, which
holds the phone's /data, /system (with `getprop` and build properties), /tmp, and read-only
views of this host's /usr, /bin, /lib*, /etc, /proc, /sys, /dev. An LD_PRELOAD shim starts Arm
ELF programs through qemu-user. The daemon must run in a private mount namespace (the
`EmulatedPhone` class and `edgesdk emulate adb` start it under `unshare -m`).

Signals: SIGUSR1 drops every connection (a cable pulled; the phone stays up), SIGTERM stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import posixpath
import secrets
import signal
import socket
import stat
import struct
import subprocess
import sys
from pathlib import Path

from sdk.devices.emulated.adb_proto import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_WRTE,
    AUTH_RSAPUBLICKEY,
    AUTH_SIGNATURE,
    AUTH_TOKEN,
    HEADER,
    MAX_PAYLOAD,
    MAX_PAYLOAD_LEGACY,
    SYNC_DATA_MAX,
    TOKEN_SIZE,
    VERSION,
    VERSION_MIN,
    AdbPublicKey,
    Message,
    ProtocolError,
    parse_adb_public_key,
    parse_header,
)

log = logging.getLogger("edgesdk.adbd")

#: Device paths the host may write through sync (the rest of the sandbox is read-only).
WRITABLE = ("/data", "/tmp", "/sdcard")
#: Advertised in the CNXN banner: what the host may use.
FEATURES = ("shell_v2", "cmd", "fixed_push_mkdir")

SHELL_ENV = {
    "PATH": "/system/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "ANDROID_ROOT": "/system", "ANDROID_DATA": "/data", "EXTERNAL_STORAGE": "/sdcard",
    "TMPDIR": "/data/local/tmp", "HOME": "/", "SHELL": "/system/bin/sh", "LANG": "C.UTF-8",
    "LD_PRELOAD": "/system/lib64/libedgesdk_exec.so",
}


class Sandbox:
    """The phone's file system: device paths resolved inside the sandbox root."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root.resolve()
        self.env = env

    def host_path(self, device_path: str, *, follow_last: bool = True) -> Path:
        """Where a device path lives on this host; symlinks resolve inside the sandbox."""
        parts = [p for p in posixpath.normpath("/" + device_path.lstrip("/")).split("/") if p]
        resolved: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = self.root.joinpath(*resolved, part)
            if candidate.is_symlink() and (parts or follow_last):
                hops += 1
                if hops > 40:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", device_path)
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            resolved.append(part)
        return self.root.joinpath(*resolved)

    @staticmethod
    def writable(device_path: str) -> bool:
        path = posixpath.normpath("/" + device_path.lstrip("/"))
        return any(path == w or path.startswith(w + "/") for w in WRITABLE)

    def shell_argv(self, command: str | None) -> list[str]:
        return ["/system/bin/sh", "-c", command] if command else ["/system/bin/sh"]

    def chroot(self) -> None:  # runs in the child between fork and exec
        os.chroot(self.root)
        os.chdir("/")


class Stream:
    """One ADB stream: our end of an OPEN. Writes wait for the host's OKAY (one in flight)."""

    def __init__(self, conn: Connection, local_id: int, remote_id: int, service: str):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self._buffer = bytearray()
        self._data = asyncio.Condition()
        self._eof = False
        self._ready = asyncio.Event()
        self._ready.set()  # an OPEN implies the host is ready for our first WRTE
        self.closed = False
        self._sent_close = False
        self.task: asyncio.Task[None] | None = None
        self.process: asyncio.subprocess.Process | None = None

    # --- from the host
    async def feed(self, data: bytes) -> None:
        async with self._data:
            self._buffer += data
            self._data.notify_all()

    async def peer_closed(self) -> None:
        async with self._data:
            self._eof = True
            self._data.notify_all()
        self._ready.set()
        self.closed = True
        self.kill()
        # adbd answers a host's CLSE with its own (adb-shell waits for it)
        await self._send_close()

    async def _send_close(self) -> None:
        if not self._sent_close:
            self._sent_close = True
            await self.conn.send(Message(A_CLSE, self.local_id, self.remote_id))

    def acked(self) -> None:
        self._ready.set()

    async def read_some(self) -> bytes:
        """Whatever the host sent (b"" once it closed)."""
        async with self._data:
            while not self._buffer and not self._eof:
                await self._data.wait()
            data, self._buffer = bytes(self._buffer), bytearray()
            return data

    async def read_exact(self, size: int) -> bytes:
        async with self._data:
            while len(self._buffer) < size:
                if self._eof:
                    raise EOFError(f"stream closed after {len(self._buffer)} of {size} bytes")
                await self._data.wait()
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            return data

    # --- to the host
    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.closed:
                raise EOFError("host closed the stream")
            await self._ready.wait()
            if self.closed:
                raise EOFError("host closed the stream")
            self._ready.clear()
            chunk, view = view[:self.conn.max_payload], view[self.conn.max_payload:]
            await self.conn.send(Message(A_WRTE, self.local_id, self.remote_id, bytes(chunk)))

    async def close(self) -> None:
        self.closed = True
        await self._send_close()
        self.kill()

    def kill(self) -> None:
        proc = self.process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


class Connection:
    """One host connection (one TCP socket)."""

    def __init__(self, daemon: Daemon, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter):
        self.daemon = daemon
        self.reader = reader
        self.writer = writer
        self.max_payload = MAX_PAYLOAD_LEGACY
        self.streams: dict[int, Stream] = {}
        self._next_id = 1
        self._send_lock = asyncio.Lock()
        self.peer = writer.get_extra_info("peername")

    async def send(self, message: Message) -> None:
        async with self._send_lock:
            self.writer.write(message.pack())
            await self.writer.drain()

    async def receive(self) -> Message:
        header = await self.reader.readexactly(HEADER.size)
        command, arg0, arg1, length, _check = parse_header(header)
        # peers from version 0x01000001 on send 0 as the checksum: we do not insist on it
        payload = await self.reader.readexactly(length) if length else b""
        return Message(command, arg0, arg1, payload)

    async def run(self) -> None:
        try:
            if await self._handshake():
                await self._serve()
        except (asyncio.IncompleteReadError, ConnectionError, EOFError):
            pass
        except ProtocolError as exc:
            log.warning("closing %s: %s", self.peer, exc)
        finally:
            for stream in list(self.streams.values()):
                stream.closed = True
                stream.kill()
                if stream.task is not None:
                    stream.task.cancel()
            self.streams.clear()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    # ------------------------------------------------------------------ connect and auth
    async def _handshake(self) -> bool:
        while True:  # anything before CNXN is ignored
            message = await self.receive()
            if message.command == A_CNXN:
                break
        if message.arg0 < VERSION_MIN:
            raise ProtocolError(f"host protocol version 0x{message.arg0:08x} is too old")
        self.max_payload = max(MAX_PAYLOAD_LEGACY, min(MAX_PAYLOAD, message.arg1))
        log.info("CNXN from %s: %r", self.peer, message.payload[:200])
        if not self.daemon.auth_required:
            await self._send_cnxn()
            return True
        token = secrets.token_bytes(TOKEN_SIZE)
        await self.send(Message(A_AUTH, AUTH_TOKEN, 0, token))
        while True:
            message = await self.receive()
            if message.command != A_AUTH:
                continue  # the host must authenticate first
            if message.arg0 == AUTH_SIGNATURE:
                key = self.daemon.key_for(token, message.payload)
                if key is not None:
                    log.info("signature verified with key %s", key.comment or "(no comment)")
                    await self._send_cnxn()
                    return True
                token = secrets.token_bytes(TOKEN_SIZE)  # try the next key
                await self.send(Message(A_AUTH, AUTH_TOKEN, 0, token))
            elif message.arg0 == AUTH_RSAPUBLICKEY:
                try:
                    key = parse_adb_public_key(message.payload)
                except ProtocolError as exc:
                    raise ProtocolError(f"bad public key: {exc}") from None
                if not self.daemon.accept_new_keys:
                    log.info("new key %s not accepted (the user never taps 'Allow')",
                             key.comment)
                    await asyncio.Event().wait()  # like a phone whose prompt nobody answers
                self.daemon.authorize(key)
                await self._send_cnxn()
                return True

    async def _send_cnxn(self) -> None:
        await self.send(Message(A_CNXN, VERSION, MAX_PAYLOAD, self.daemon.banner()))

    # ------------------------------------------------------------------ streams
    async def _serve(self) -> None:
        while True:
            message = await self.receive()
            command = message.command
            if command == A_OPEN:
                await self._open(message)
            elif command == A_OKAY:
                stream = self.streams.get(message.arg1)
                if stream is not None:
                    if stream.remote_id == 0:
                        stream.remote_id = message.arg0
                    stream.acked()
            elif command == A_WRTE:
                stream = self.streams.get(message.arg1)
                if stream is not None and not stream.closed:
                    await stream.feed(message.payload)
                    await self.send(Message(A_OKAY, stream.local_id, stream.remote_id))
            elif command == A_CLSE:
                stream = self.streams.pop(message.arg1, None)
                if stream is not None:
                    await stream.peer_closed()
            elif command == A_CNXN:
                raise ProtocolError("host reconnected on a live connection")
            # AUTH after the handshake, SYNC, STLS: ignored

    async def _open(self, message: Message) -> None:
        remote_id = message.arg0
        service = message.payload.rstrip(b"\x00").decode("utf-8", "replace")
        if remote_id == 0:
            raise ProtocolError("OPEN with local-id 0")
        handler = self.daemon.service_for(service)
        if handler is None:
            log.info("refusing service %r", service)
            await self.send(Message(A_CLSE, 0, remote_id))
            return
        local_id = self._next_id
        self._next_id += 1
        stream = Stream(self, local_id, remote_id, service)
        self.streams[local_id] = stream
        await self.send(Message(A_OKAY, local_id, remote_id))
        stream.task = asyncio.create_task(self._run_service(handler, stream))

    async def _run_service(self, handler, stream: Stream) -> None:  # type: ignore[no-untyped-def]
        try:
            await handler(stream)
        except (EOFError, ConnectionError):
            pass
        except asyncio.CancelledError:
            stream.kill()
            raise
        except Exception:
            log.exception("service %r failed", stream.service)
        finally:
            with contextlib.suppress(Exception):
                await stream.close()
            self.streams.pop(stream.local_id, None)


class Daemon:
    """The phone: properties, keys, sandbox, and the services it offers."""

    def __init__(self, args: argparse.Namespace):
        self.serial = args.serial
        self.sandbox = Sandbox(Path(args.root), _shell_env(args))
        self.auth_required = not args.no_auth
        self.accept_new_keys = args.accept_new_keys
        self.keys_file = Path(args.adb_keys) if args.adb_keys else None
        self.keys: list[AdbPublicKey] = []
        if self.keys_file and self.keys_file.exists():
            for line in self.keys_file.read_text().splitlines():
                if line.strip():
                    self.keys.append(parse_adb_public_key(line))
        self.props = _read_props(self.sandbox.host_path("/system/build.prop"))
        self.connections: set[Connection] = set()
        self.parent: int | None = args.parent

    # --- auth
    def key_for(self, token: bytes, signature: bytes) -> AdbPublicKey | None:
        return next((k for k in self.keys if k.verify(token, signature)), None)

    def authorize(self, key: AdbPublicKey) -> None:
        self.keys.append(key)
        if self.keys_file is not None:
            with open(self.keys_file, "a") as handle:
                handle.write(key.text + "\n")

    def banner(self) -> bytes:
        props = ";".join(f"{k}={self.props.get(k, '')}" for k in
                         ("ro.product.name", "ro.product.model", "ro.product.device"))
        return f"device::{props};features={','.join(FEATURES)}".encode()

    # --- services
    def service_for(self, service: str):  # type: ignore[no-untyped-def]
        if service.startswith("shell"):
            name, _, command = service.partition(":")
            options = name.split(",")[1:]
            if "v2" in options:
                return lambda stream: self.shell_v2(stream, command)
            return lambda stream: self.shell_v1(stream, command, merge_stderr=True)
        if service.startswith("exec:"):
            return lambda stream: self.shell_v1(stream, service[5:], merge_stderr=False)
        if service == "sync:":
            return self.sync
        return None

    async def spawn(self, command: str | None, *, merge_stderr: bool
                    ) -> asyncio.subprocess.Process:
        stderr = asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE
        return await asyncio.create_subprocess_exec(
            *self.sandbox.shell_argv(command), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=stderr, env=self.sandbox.env,
            preexec_fn=self.sandbox.chroot, start_new_session=True)

    async def shell_v1(self, stream: Stream, command: str, *, merge_stderr: bool) -> None:
        proc = await self.spawn(command or None, merge_stderr=merge_stderr)
        stream.process = proc
        feeder = asyncio.create_task(_pump_stdin(stream, proc))
        try:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(MAX_PAYLOAD):
                await stream.write(chunk)
            await proc.wait()
        finally:
            feeder.cancel()
            stream.kill()

    async def shell_v2(self, stream: Stream, command: str) -> None:
        proc = await self.spawn(command or None, merge_stderr=False)
        stream.process = proc

        async def pump(reader: asyncio.StreamReader | None, packet_id: int) -> None:
            assert reader is not None
            while chunk := await reader.read(MAX_PAYLOAD - 5):
                await stream.write(struct.pack("<BI", packet_id, len(chunk)) + chunk)

        async def host_packets() -> None:
            assert proc.stdin is not None
            try:
                while True:
                    packet_id, length = struct.unpack("<BI", await stream.read_exact(5))
                    data = await stream.read_exact(length) if length else b""
                    if packet_id == 0:      # stdin
                        proc.stdin.write(data)
                        await proc.stdin.drain()
                    elif packet_id == 4:    # close stdin
                        proc.stdin.close()
                    # 5: window size change: no pty here
            except (EOFError, ConnectionError, BrokenPipeError):
                with contextlib.suppress(Exception):
                    proc.stdin.close()

        feeder = asyncio.create_task(host_packets())
        try:
            await asyncio.gather(pump(proc.stdout, 1), pump(proc.stderr, 2))
            code = await proc.wait()
            if code < 0:
                code = 128 - code
            await stream.write(struct.pack("<BIB", 3, 1, code & 0xFF))
        finally:
            feeder.cancel()
            stream.kill()

    # --- sync:
    async def sync(self, stream: Stream) -> None:
        while True:
            request, length = struct.unpack("<4sI", await stream.read_exact(8))
            if request == b"QUIT":
                return
            if length > 4096:
                await _sync_fail(stream, f"path of {length} bytes is too long")
                return
            path = (await stream.read_exact(length)).decode("utf-8", "surrogateescape")
            if request == b"STAT":
                await stream.write(b"STAT" + self._stat(path))
            elif request == b"LIST":
                await self._list(stream, path)
            elif request == b"SEND":
                await self._send(stream, path)
            elif request == b"RECV":
                await self._recv(stream, path)
            else:
                await _sync_fail(stream, f"unsupported sync request {request!r}")
                return

    def _stat(self, path: str) -> bytes:
        try:
            st = os.lstat(self.sandbox.host_path(path, follow_last=False))
        except OSError:
            return struct.pack("<III", 0, 0, 0)
        return struct.pack("<III", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF,
                           int(st.st_mtime) & 0xFFFFFFFF)

    async def _list(self, stream: Stream, path: str) -> None:
        host = self.sandbox.host_path(path)
        with contextlib.suppress(OSError):
            for name in [".", "..", *sorted(os.listdir(host))]:
                try:
                    st = os.lstat(host / name)
                except OSError:
                    continue
                raw = name.encode("utf-8", "surrogateescape")
                await stream.write(b"DENT" + struct.pack(
                    "<IIII", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF,
                    int(st.st_mtime) & 0xFFFFFFFF, len(raw)) + raw)
        await stream.write(b"DONE" + bytes(16))

    async def _send(self, stream: Stream, spec: str) -> None:
        path, sep, mode_text = spec.rpartition(",")
        if not sep:
            path, mode_text = spec, "33188"
        try:
            mode = int(mode_text)
        except ValueError:
            mode = 0o100644
        error: str | None = None
        handle = None
        host: Path | None = None
        if not self.sandbox.writable(path):
            error = f"couldn't create file: Read-only file system ({path})"
        else:
            try:
                host = self.sandbox.host_path(path)
                host.parent.mkdir(parents=True, exist_ok=True)  # fixed_push_mkdir
                if host.is_dir():
                    raise IsADirectoryError(errno.EISDIR, "Is a directory")
                with contextlib.suppress(FileNotFoundError):
                    host.unlink()
                handle = open(host, "wb")  # noqa: SIM115 - closed below on every path
            except OSError as exc:
                error = f"couldn't create file: {exc.strerror}"
        completed = False
        try:
            while True:
                request, value = struct.unpack("<4sI", await stream.read_exact(8))
                if request == b"DATA":
                    if value > SYNC_DATA_MAX * 4:
                        raise EOFError(f"DATA chunk of {value} bytes")
                    data = await stream.read_exact(value)
                    if handle is not None and error is None:
                        try:
                            handle.write(data)
                        except OSError as exc:
                            error = f"write failed: {exc.strerror}"
                elif request == b"DONE":
                    if handle is not None and error is None:
                        try:
                            handle.close()
                            os.chmod(host, stat.S_IMODE(mode) or 0o644)  # type: ignore[arg-type]
                            os.utime(host, (value, value))  # type: ignore[arg-type]
                        except OSError as exc:
                            error = f"write failed: {exc.strerror}"
                    completed = True
                    break
                else:
                    raise EOFError(f"unexpected {request!r} in SEND")
        finally:
            if handle is not None and not handle.closed:
                with contextlib.suppress(OSError):
                    handle.close()
            if (error or not completed) and host is not None and handle is not None:
                with contextlib.suppress(OSError):
                    host.unlink()  # like adbd: no partial file after a failed transfer
        if error:
            await _sync_fail(stream, error)
        else:
            await stream.write(b"OKAY" + bytes(4))

    async def _recv(self, stream: Stream, path: str) -> None:
        try:
            handle = open(self.sandbox.host_path(path), "rb")  # noqa: SIM115
        except OSError as exc:
            await _sync_fail(stream, f"open failed: {exc.strerror}")
            return
        with handle:
            while block := handle.read(SYNC_DATA_MAX):
                await stream.write(b"DATA" + struct.pack("<I", len(block)) + block)
        await stream.write(b"DONE" + bytes(4))

    # --- the server
    async def serve(self, host: str, port: int, ready_file: str | None) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, reader, writer)
            self.connections.add(conn)
            try:
                await conn.run()
            finally:
                self.connections.discard(conn)

        server = await asyncio.start_server(accept, host, port)
        actual = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, self.drop_connections)
        watcher = loop.create_task(_watch_parent(self.parent, stop)) if self.parent else None
        info = {"port": actual, "pid": os.getpid(), "serial": self.serial}
        if ready_file:
            tmp = ready_file + ".tmp"
            Path(tmp).write_text(json.dumps(info))
            os.replace(tmp, ready_file)
        print(f"edgesdk emulated phone {self.serial}: listening on {host}:{actual}", flush=True)
        async with server:
            await stop.wait()
        if watcher is not None:
            watcher.cancel()
        self.drop_connections()
        await asyncio.sleep(0.05)

    def drop_connections(self) -> None:
        for conn in list(self.connections):
            for stream in list(conn.streams.values()):
                stream.kill()
            transport = conn.writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        log.info("dropped %d connection(s)", len(self.connections))


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    """A phone outlives nobody: when the process that started it is gone, stop."""
    while not stop.is_set():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("parent %d is gone: stopping", pid)
            stop.set()
            return
        except PermissionError:
            pass
        await asyncio.sleep(1.0)


async def _pump_stdin(stream: Stream, proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    try:
        while data := await stream.read_some():
            proc.stdin.write(data)
            await proc.stdin.drain()
    except (ConnectionError, BrokenPipeError):
        pass
    finally:
        with contextlib.suppress(Exception):
            proc.stdin.close()


async def _sync_fail(stream: Stream, message: str) -> None:
    raw = message.encode()
    await stream.write(b"FAIL" + struct.pack("<I", len(raw)) + raw)


def _read_props(path: Path) -> dict[str, str]:
    props = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                props[key.strip()] = value.strip()
    return props


def _shell_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(SHELL_ENV)
    env["ANDROID_SERIAL"] = args.serial
    for name, value in (("EDGESDK_QEMU_AARCH64", args.qemu_aarch64),
                        ("EDGESDK_QEMU_ARM", args.qemu_arm)):
        if value:
            env[name] = value
    return env


# ---------------------------------------------------------------------------- the sandbox
def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"adbd: mount {' '.join(args)} failed: {result.stderr.strip()}")


def _bind(source: str, target: Path, *, read_only: bool) -> None:
    target.mkdir(parents=True, exist_ok=True)
    _mount("--rbind", source, str(target))
    if read_only:
        _mount("-o", "remount,bind,ro", str(target))


def setup_mounts(root: Path, *, storage_bytes: int | None, expose: list[str]) -> None:
    """Bind this host's system directories into the sandbox (read-only), /proc /sys /dev, the
    exposed paths, a tmpfs /data of `storage_bytes` when asked, and make /system read-only.
    Only ever called inside a private mount namespace: nothing leaks to the host."""
    _mount("--make-rprivate", "/")
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc"):
        host = Path("/") / name
        target = root / name
        if host.is_symlink():
            if not target.is_symlink():
                target.symlink_to(os.readlink(host))
        elif host.is_dir():
            _bind(str(host), target, read_only=True)
    for name in ("proc", "sys", "dev"):
        _bind(f"/{name}", root / name, read_only=False)
    if storage_bytes:
        _mount("-t", "tmpfs", "-o", f"size={int(storage_bytes)},mode=0771", "edgesdk-data",
               str(root / "data"))
    (root / "data" / "local" / "tmp").mkdir(parents=True, exist_ok=True)
    os.chmod(root / "data" / "local" / "tmp", 0o1777)
    for path in expose:
        real = os.path.realpath(path)
        _bind(real, root / real.lstrip("/"), read_only=True)
        if os.path.abspath(path) != real and not (root / path.lstrip("/")).exists():
            link = root / path.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(real)
    _bind(str(root / "system"), root / "system", read_only=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdk.devices.emulated.adbd",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the sandbox (prepared by EmulatedPhone)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5555)
    parser.add_argument("--serial", default="emulator-edgesdk")
    parser.add_argument("--no-auth", action="store_true", help="accept hosts without a key")
    parser.add_argument("--adb-keys", help="authorised public keys, one per line")
    parser.add_argument("--accept-new-keys", action="store_true",
                        help="authorise a new public key (the user tapping 'Allow')")
    parser.add_argument("--storage-bytes", type=int, help="size of /data (a tmpfs)")
    parser.add_argument("--expose", action="append", default=[],
                        help="host path visible read-only at the same path in the phone")
    parser.add_argument("--qemu-aarch64", help="qemu command for AArch64 programs")
    parser.add_argument("--qemu-arm", help="qemu command for 32-bit Arm programs")
    parser.add_argument("--ready-file", help="write {port, pid} here once listening")
    parser.add_argument("--log-file")
    parser.add_argument("--parent", type=int,
                        help="stop when this process ends (the one that started the phone)")
    parser.add_argument("--no-mounts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(filename=args.log_file, level=logging.INFO,
                        format="%(asctime)s adbd %(levelname)s %(message)s")
    root = Path(args.root)
    if not args.no_mounts:
        setup_mounts(root, storage_bytes=args.storage_bytes, expose=args.expose)
    daemon = Daemon(args)
    try:
        asyncio.run(daemon.serve(args.host, args.port, args.ready_file))
    except OSError as exc:
        print(f"adbd: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
