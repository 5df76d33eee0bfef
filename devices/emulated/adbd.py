"""An ADB daemon (the phone side) for emulated phones: `python -m sdk.devices.emulated.adbd`.

It speaks the ADB wire protocol over TCP — CNXN, AUTH (RSA signature check against the
authorised keys), OPEN/OKAY/WRTE/CLSE with ADB's one-write-in-flight flow control — and offers
the services a host uses:

* `shell:CMD` (v1: output merged, no exit code), `shell,v2[,raw|pty]:CMD` (stdout, stderr and the
  exit code in v2 packets, stdin from the host), `exec:CMD` (stdout only);
* `sync:` with STAT, LIST, SEND (`path,mode`, DATA chunks, DONE with mtime), RECV, QUIT.

Keys: only keys in the `--adb-keys` files (read at every connection, like adbd's adb_keys) are
accepted. A host that offers an unknown key is told nothing more than a real phone tells it
("unauthorized"); this daemon prints which key it refused and exactly how to authorise it, and
the waiting connection goes through once the key is in the file.

Commands run in a sandbox (`adb_sandbox`): `/system/bin/sh -c CMD` chrooted into the sandbox
directory, as nobody when started as root, with no_new_privs, in the phone's own pid namespace
with a fresh /proc; read-only views of this host's /usr, /bin, /lib*, /etc, /sys, a minimal
/dev. An LD_PRELOAD shim starts Arm ELF programs through qemu-user. The daemon must run in a
private mount namespace and as the init of a pid namespace (the `EmulatedPhone` class and
`edgesdk emulate adb` start it under `unshare -m -p -f`). It listens on loopback unless
`--allow-remote`.

Signals: SIGUSR1 drops every connection (a cable pulled; the phone stays up), SIGTERM stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
import secrets
import shlex
import signal
import socket
import stat
import struct
import sys
import time
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
from sdk.devices.emulated.adb_sandbox import (
    Sandbox,
    SandboxError,
    SandboxUser,
    setup_mounts,
    writable,
)

log = logging.getLogger("edgesdk.adbd")

#: Advertised in the CNXN banner: what the host may use.
FEATURES = ("shell_v2", "cmd", "fixed_push_mkdir")

SHELL_ENV = {
    "PATH": "/system/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "ANDROID_ROOT": "/system", "ANDROID_DATA": "/data", "EXTERNAL_STORAGE": "/sdcard",
    "TMPDIR": "/data/local/tmp", "HOME": "/", "SHELL": "/system/bin/sh", "LANG": "C.UTF-8",
    "LD_PRELOAD": "/system/lib64/libedgesdk_exec.so",
}


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
                # the phone's prompt: nobody taps "Allow" here; the key must be authorised in
                # the keys file (the host sees "unauthorized" until then, as with a real phone)
                if not await self.daemon.wait_for_authorisation(key, self.peer):
                    return False
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

    #: how long a connection that offered an unknown key waits for it to be authorised
    AUTHORISATION_WAIT_S = 300.0
    #: at most this many such connections wait at once (the rest are closed at once)
    MAX_WAITING = 16

    def __init__(self, args: argparse.Namespace):
        self.serial = args.serial
        self.user = SandboxUser.for_this_process()
        self.sandbox = Sandbox(Path(args.root), _shell_env(args), self.user)
        self.auth_required = not args.no_auth
        self.keys_files = [Path(f) for f in args.adb_keys]
        self.props = _read_props(Path(args.root) / "system" / "build.prop")
        self.connections: set[Connection] = set()
        self.parent: int | None = args.parent
        self.children: set[asyncio.subprocess.Process] = set()  #: shells we wait for
        self._spawning = 0
        self._refused: set[str] = set()
        self._waiting = 0

    # --- auth
    def authorised_keys(self) -> list[AdbPublicKey]:
        """The keys in the keys files, read now (editing a file takes effect at once)."""
        keys = []
        for path in self.keys_files:
            try:
                lines = path.read_text().splitlines()
            except OSError:
                continue
            for number, line in enumerate(lines, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    keys.append(parse_adb_public_key(line))
                except ProtocolError as exc:
                    log.warning("%s line %d: not an ADB public key (%s): skipped", path,
                                number, exc)
        return keys

    def key_for(self, token: bytes, signature: bytes) -> AdbPublicKey | None:
        return next((k for k in self.authorised_keys() if k.verify(token, signature)), None)

    def is_authorised(self, key: AdbPublicKey) -> bool:
        return any(k.modulus == key.modulus and k.exponent == key.exponent
                   for k in self.authorised_keys())

    async def wait_for_authorisation(self, key: AdbPublicKey, peer: object) -> bool:
        """True once `key` is in a keys file; says how to put it there; False after a while."""
        if self.is_authorised(key):
            return True
        message = self.refusal_message(key, peer)
        log.warning("%s", message)
        if key.fingerprint not in self._refused:  # once per key on the console
            self._refused.add(key.fingerprint)
            print(message, flush=True)
        if self._waiting >= self.MAX_WAITING:
            log.warning("%d connections already wait for authorisation: closing %s",
                        self._waiting, _peer_text(peer))
            return False
        self._waiting += 1
        try:
            deadline = time.monotonic() + self.AUTHORISATION_WAIT_S
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                if self.is_authorised(key):
                    log.info("key %s authorised: connection from %s accepted",
                             key.fingerprint, peer)
                    return True
            return False
        finally:
            self._waiting -= 1

    def refusal_message(self, key: AdbPublicKey, peer: object) -> str:
        where = self.keys_files[0] if self.keys_files else None
        lines = [f"adbd {self.serial}: refused the unknown ADB key {key.fingerprint} "
                 f"({key.comment or 'no comment'}) from {_peer_text(peer)}: keys must be "
                 "authorised explicitly."]
        if where is not None:
            lines += ["  To authorise it, add its public key to the authorised-keys file "
                      "(read at every connection; the waiting connection then goes through):",
                      f"    echo {shlex.quote(key.text)} >> {shlex.quote(str(where))}"]
        lines += ["  or restart the emulator with --authorize-key PATH-TO-THE-HOST'S-adbkey.pub "
                  "(Debian's adb: ~/.android/adbkey.pub; edgesdk: ~/.config/edgesdk/adbkey.pub)."]
        return "\n".join(lines)

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
        self._spawning += 1
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.sandbox.shell_argv(command), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=stderr, env=self.sandbox.env,
                preexec_fn=self.sandbox.enter, start_new_session=True)
            self.children.add(proc)
        finally:
            self._spawning -= 1
        return proc

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
            with self.user.files(), self.sandbox.resolve(path, follow_last=False) as where:
                st = os.stat(where.name, dir_fd=where.dir_fd, follow_symlinks=False)
        except OSError:
            return struct.pack("<III", 0, 0, 0)
        return struct.pack("<III", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF,
                           int(st.st_mtime) & 0xFFFFFFFF)

    def _listing(self, path: str) -> list[tuple[str, os.stat_result]]:
        entries = []
        with self.user.files(), self.sandbox.resolve(path) as where:
            fd = os.open(where.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=where.dir_fd)
            try:
                for name in [".", "..", *sorted(os.listdir(fd))]:
                    with contextlib.suppress(OSError):
                        entries.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
            finally:
                os.close(fd)
        return entries

    async def _list(self, stream: Stream, path: str) -> None:
        entries: list[tuple[str, os.stat_result]] = []
        with contextlib.suppress(OSError):
            entries = self._listing(path)
        for name, st in entries:
            raw = name.encode("utf-8", "surrogateescape")
            await stream.write(b"DENT" + struct.pack(
                "<IIII", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF,
                int(st.st_mtime) & 0xFFFFFFFF, len(raw)) + raw)
        await stream.write(b"DONE" + bytes(16))

    def _create(self, path: str) -> tuple[int, int, str]:
        """(file fd, parent dir fd, name) of a new file at `path`, resolved inside the sandbox
        and checked to be in writable storage there; the caller closes both fds."""
        with self.user.files():
            where = self.sandbox.resolve(path, make_parents=True)  # fixed_push_mkdir
            try:
                if not writable(where.path):
                    raise OSError(errno.EROFS, "Read-only file system", path)
                if where.name == ".":
                    raise OSError(errno.EISDIR, "Is a directory", path)
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(where.name, dir_fd=where.dir_fd, follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        raise OSError(errno.EISDIR, "Is a directory", path)
                    os.unlink(where.name, dir_fd=where.dir_fd)
                # O_EXCL: whatever appeared at the name since (a symlink...) is not followed
                fd = os.open(where.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o600, dir_fd=where.dir_fd)
            except BaseException:
                where.close()
                raise
            parent = os.dup(where.dir_fd)
            where.close()
            return fd, parent, where.name

    async def _send(self, stream: Stream, spec: str) -> None:
        path, sep, mode_text = spec.rpartition(",")
        if not sep:
            path, mode_text = spec, "33188"
        try:
            mode = int(mode_text)
        except ValueError:
            mode = 0o100644
        error: str | None = None
        fd = parent = -1
        name = ""
        try:
            fd, parent, name = self._create(path)
        except OSError as exc:
            if exc.errno == errno.EROFS:
                error = f"couldn't create file: Read-only file system ({path})"
            else:
                error = f"couldn't create file: {exc.strerror}"
        completed = False
        try:
            while True:
                request, value = struct.unpack("<4sI", await stream.read_exact(8))
                if request == b"DATA":
                    if value > SYNC_DATA_MAX * 4:
                        raise EOFError(f"DATA chunk of {value} bytes")
                    data = await stream.read_exact(value)
                    if fd >= 0 and error is None:
                        try:
                            view = memoryview(data)
                            while view:
                                view = view[os.write(fd, view):]
                        except OSError as exc:
                            error = f"write failed: {exc.strerror}"
                elif request == b"DONE":
                    if fd >= 0 and error is None:
                        try:
                            # permission bits only: no set-id bits from a host
                            os.fchmod(fd, (stat.S_IMODE(mode) & 0o777) or 0o644)
                            os.utime(fd, (value, value))
                            os.close(fd)
                            fd = -1
                        except OSError as exc:
                            error = f"write failed: {exc.strerror}"
                    completed = True
                    break
                else:
                    raise EOFError(f"unexpected {request!r} in SEND")
        finally:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if parent >= 0:
                if error or not completed:
                    with contextlib.suppress(OSError), self.user.files():
                        os.unlink(name, dir_fd=parent)  # like adbd: no partial file
                os.close(parent)
        if error:
            await _sync_fail(stream, error)
        else:
            await stream.write(b"OKAY" + bytes(4))

    def _open_for_reading(self, path: str) -> int:
        with self.user.files(), self.sandbox.resolve(path) as where:
            return os.open(where.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                           dir_fd=where.dir_fd)

    async def _recv(self, stream: Stream, path: str) -> None:
        try:
            fd = self._open_for_reading(path)
        except OSError as exc:
            await _sync_fail(stream, f"open failed: {exc.strerror}")
            return
        with open(fd, "rb") as handle:
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
        reaper = loop.create_task(self._reap_orphans(stop)) if os.getpid() == 1 else None
        info = {"port": actual, "pid": _host_pid(), "serial": self.serial}
        if ready_file:
            tmp = ready_file + ".tmp"
            Path(tmp).write_text(json.dumps(info))
            os.replace(tmp, ready_file)
        print(f"edgesdk emulated phone {self.serial}: listening on {host}:{actual}", flush=True)
        async with server:
            await stop.wait()
        for task in (watcher, reaper):
            if task is not None:
                task.cancel()
        self.drop_connections()
        await asyncio.sleep(0.05)

    async def _reap_orphans(self, stop: asyncio.Event) -> None:
        """As the init of the phone's pid namespace, orphans (a shell's background jobs) become
        our children: reap their zombies, leaving alone the shells asyncio waits for."""
        proc = self.sandbox.root / "proc"  # the phone's /proc: pids as this namespace sees them
        while not stop.is_set():
            await asyncio.sleep(2.0)
            if self._spawning:
                continue  # a shell being started is not in self.children yet
            self.children = {p for p in self.children if p.returncode is None}
            waited = {p.pid for p in self.children}
            for pid in _zombie_children(proc):
                if pid not in waited:
                    with contextlib.suppress(ChildProcessError, OSError):
                        os.waitpid(pid, os.WNOHANG)

    def drop_connections(self) -> None:
        for conn in list(self.connections):
            for stream in list(conn.streams.values()):
                stream.kill()
            transport = conn.writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        log.info("dropped %d connection(s)", len(self.connections))


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    """A phone outlives nobody: when the process that started it is gone, stop. (The host's
    /proc, mounted here, sees the parent from outside the phone's pid namespace.)"""
    while not stop.is_set():
        if not os.path.exists(f"/proc/{pid}"):
            log.info("parent %d is gone: stopping", pid)
            stop.set()
            return
        await asyncio.sleep(1.0)


def _host_pid() -> int:
    """This process's pid as the host sees it (from inside a pid namespace, getpid() is 1):
    /proc here is the host's."""
    with contextlib.suppress(OSError, ValueError):
        return int(os.readlink("/proc/self"))
    return os.getpid()


def _zombie_children(proc: Path) -> list[int]:
    """Zombie children of pid 1 in the pid namespace whose /proc is mounted at `proc`."""
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(proc / "1" / "task"):
            with contextlib.suppress(OSError):
                for pid in (proc / "1" / "task" / task / "children").read_text().split():
                    with contextlib.suppress(OSError, IndexError):
                        fields = (proc / pid / "stat").read_text().rpartition(")")[2].split()
                        if fields[0] == "Z":
                            found.append(int(pid))
    return found


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


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one ("" and 0.0.0.0 are not)."""
    if not host:
        return False
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback
                               for info in infos)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdk.devices.emulated.adbd",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the sandbox (prepared by EmulatedPhone)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--allow-remote", action="store_true",
                        help="listen on a non-loopback --host (anyone who reaches it may try)")
    parser.add_argument("--port", type=int, default=5555)
    parser.add_argument("--serial", default="emulator-edgesdk")
    parser.add_argument("--no-auth", action="store_true", help="accept hosts without a key")
    parser.add_argument("--adb-keys", action="append", default=[],
                        help="a file of authorised public keys, one per line (read at every "
                             "connection; may be repeated)")
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
    if not args.allow_remote and not is_loopback(args.host):
        print(f"adbd: refusing to listen on {args.host!r}, which is not a loopback address: "
              "anyone who reaches it could try to get in. Use 127.0.0.1, or pass "
              "--allow-remote to mean it.", file=sys.stderr)
        return 2
    if args.allow_remote and not is_loopback(args.host):
        print(f"adbd: WARNING: listening on {args.host}, reachable from other machines; the "
              "sandbox is a test stand-in, not a security boundary", file=sys.stderr, flush=True)
    root = Path(args.root)
    if not args.no_mounts:
        try:
            fresh_proc = setup_mounts(root, storage_bytes=args.storage_bytes,
                                      expose=args.expose)
        except SandboxError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        if not fresh_proc:
            log.warning("no fresh /proc for the phone (not the init of a pid namespace, or "
                        "the mount was refused): its /proc is empty")
    daemon = Daemon(args)
    if daemon.user.drops:
        os.setgroups([])  # root's supplementary groups never reach the sync services
    log.info("shells and sync run as %s", f"uid {daemon.user.uid}" if daemon.user.drops
             else f"the invoking user (uid {os.getuid()} here)")
    try:
        asyncio.run(daemon.serve(args.host, args.port, args.ready_file))
    except OSError as exc:
        print(f"adbd: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
