"""A private Dovecot IMAP server on a loopback port, for integration tests and the inbox benchmark.

Everything lives in a fresh temporary directory: the configuration, the Maildirs, the runtime
sockets and the log.  Two passdbs are configured: a passwd-file with plain passwords and Dovecot's
oauth2 passdb (XOAUTH2 / OAUTHBEARER) pointed at an introspection endpoint the tests run
(:mod:`tests.support.oauth_server`).  Mail is stored as the ``dovecot`` system user when running as
root, else as the current user.

    server = DovecotServer(users={"soporte@example.mx": "secreto"}, introspection_url=...)
    server.start()
    server.append("INBOX", raw)
    server.restart()          # same port, same mail
    server.recreate("INBOX")  # delete + create: a new UIDVALIDITY
    server.stop()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil
from imapclient import IMAPClient

DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")


def find_dovecot() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    for candidate in DOVECOT_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def dovecot_unavailable_reason() -> str | None:
    if find_dovecot() is None:
        return "dovecot is not installed (apt-get install dovecot-imapd)"
    return None


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_cache_size = 0
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%n
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
first_valid_gid = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_plugins =
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
  mechanisms = plain login
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%n
}}
"""

_OAUTH2 = """\
introspection_mode = post
introspection_url = {url}
username_attribute = email
active_attribute = active
active_value = true
force_introspection = yes
"""


class DovecotServer:
    def __init__(
        self,
        users: Mapping[str, str],
        *,
        introspection_url: str = "http://127.0.0.1:9/introspect",
        root: Path | None = None,
        tls: tuple[Path, Path] | None = None,
        extra_config: str = "",
    ) -> None:
        """``tls``: (certificate PEM, key PEM) to also listen with implicit TLS on ``tls_port``;
        ``extra_config``: appended to dovecot.conf (e.g. ``imap_capability = ...`` to hide IDLE)."""
        exe = find_dovecot()
        if exe is None:
            raise RuntimeError("dovecot is not installed")
        self.exe = exe
        self.users = dict(users)
        self.introspection_url = introspection_url
        self.root = root or Path(tempfile.mkdtemp(prefix="timbrado-dovecot-"))
        self._own_root = root is None
        self.port = _free_port()
        self.tls = tls
        self.tls_port = _free_port() if tls else 0
        self.extra_config = extra_config
        self.host = "127.0.0.1"
        self._proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            user = pwd.getpwnam("dovecot")
            self.uid, self.gid = user.pw_uid, user.pw_gid
            self.internal_user, self.login_user = "dovecot", "dovenull"
            self.internal_group = "dovecot"
        else:
            me = pwd.getpwuid(os.geteuid())
            self.uid, self.gid = me.pw_uid, me.pw_gid
            self.internal_user = self.login_user = me.pw_name
            self.internal_group = me.pw_name

    # ------------------------------------------------------------------ lifecycle
    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    def _write_config(self) -> None:
        self.root.chmod(0o755)
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.root / sub, self.uid, self.gid)
        ssl = "ssl = no"
        if self.tls:
            ssl = f"ssl = yes\nssl_cert = <{self.tls[0]}\nssl_key = <{self.tls[1]}"
        self.config_path.write_text(
            _CONFIG.format(
                ssl=ssl,
                tls_port=self.tls_port,
                root=self.root,
                uid=self.uid,
                gid=self.gid,
                port=self.port,
                internal_user=self.internal_user,
                internal_group=self.internal_group,
                login_user=self.login_user,
            )
            + self.extra_config
            + "\n"
        )
        (self.root / "dovecot-oauth2.conf.ext").write_text(_OAUTH2.format(url=self.introspection_url))
        lines = [f"{user}:{{PLAIN}}{password}::::::" for user, password in self.users.items()]
        passwd = self.root / "passwd"
        passwd.write_text("\n".join(lines) + "\n")
        passwd.chmod(0o644)

    def start(self, timeout: float = 15.0) -> None:
        self._write_config()
        self._proc = subprocess.Popen(
            [self.exe, "-F", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"dovecot exited with {self._proc.returncode}: {err}\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer on port {self.port}\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # Dovecot's master leaves its children (imap sessions, log, stats) running when it stops:
        # end them too, by pid, so a restart really drops the clients' connections.
        children: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(proc.pid).children(recursive=True)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        deadline = time.monotonic() + 5
        while children and time.monotonic() < deadline:
            children = [c for c in children if _alive(c)]
            time.sleep(0.01)
        # the master's children go away with it; wait until the port is free again
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ------------------------------------------------------------------ mailbox helpers
    @property
    def default_user(self) -> str:
        return next(iter(self.users))

    @contextlib.contextmanager
    def client(self, user: str | None = None) -> Iterator[IMAPClient]:
        user = user or self.default_user
        imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        try:
            imap.plain_login(user, self.users[user])
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def url(self, user: str | None = None, mailbox: str = "INBOX", *, with_password: bool = False) -> str:
        from urllib.parse import quote

        user = user or self.default_user
        secret = f":{quote(self.users[user], safe='')}" if with_password else ""
        return f"imap://{quote(user, safe='')}{secret}@{self.host}:{self.port}/{quote(mailbox, safe='')}"

    def append(self, mailbox: str, raw: bytes, user: str | None = None) -> int | None:
        """Append ``raw`` and return its UID (from APPENDUID) when the server says it."""
        with self.client(user) as imap:
            if not imap.folder_exists(mailbox):
                imap.create_folder(mailbox)
            resp = imap.append(mailbox, raw)
        text = resp.decode() if isinstance(resp, bytes) else str(resp)
        if "APPENDUID" in text:
            return int(text.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])
        return None

    def append_many(self, mailbox: str, raws: list[bytes], user: str | None = None) -> None:
        with self.client(user) as imap:
            if not imap.folder_exists(mailbox):
                imap.create_folder(mailbox)
            for raw in raws:
                imap.append(mailbox, raw)

    def list(self, mailbox: str, user: str | None = None) -> list[bytes]:
        """Raw messages in ``mailbox`` in UID order ([] when the folder does not exist)."""
        with self.client(user) as imap:
            if not imap.folder_exists(mailbox):
                return []
            imap.select_folder(mailbox, readonly=True)
            uids = sorted(imap.search("ALL"))
            if not uids:
                return []
            data = imap.fetch(uids, ["BODY.PEEK[]"])
            return [data[uid][b"BODY[]"] for uid in uids]

    def uids(self, mailbox: str, user: str | None = None) -> list[int]:
        with self.client(user) as imap:
            if not imap.folder_exists(mailbox):
                return []
            imap.select_folder(mailbox, readonly=True)
            return sorted(imap.search("ALL"))

    def uidvalidity(self, mailbox: str, user: str | None = None) -> int:
        with self.client(user) as imap:
            return int(imap.folder_status(mailbox, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def recreate(self, mailbox: str, user: str | None = None) -> int:
        """Delete and create ``mailbox`` again (with its messages) so it gets a new UIDVALIDITY."""
        with self.client(user) as imap:
            before = int(imap.folder_status(mailbox, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
            imap.select_folder(mailbox, readonly=True)
            uids = sorted(imap.search("ALL"))
            raws = [v[b"BODY[]"] for _, v in sorted(imap.fetch(uids, ["BODY.PEEK[]"]).items())] if uids else []
            imap.unselect_folder()
            for _ in range(50):
                if mailbox.upper() == "INBOX":
                    # INBOX cannot be deleted: empty it and reset its index so UIDVALIDITY changes.
                    imap.select_folder(mailbox)
                    if uids:
                        imap.delete_messages(uids)
                        imap.expunge()
                    imap.unselect_folder()
                    imap.logout()
                    self._reset_index(mailbox, user)
                    imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
                    imap.plain_login(user or self.default_user, self.users[user or self.default_user])
                else:
                    imap.delete_folder(mailbox)
                    imap.create_folder(mailbox)
                after = int(imap.folder_status(mailbox, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
                if after != before:
                    break
                time.sleep(0.3)
                uids = []
            for raw in raws:
                imap.append(mailbox, raw)
            with contextlib.suppress(Exception):
                imap.logout()
            return after

    def _reset_index(self, mailbox: str, user: str | None) -> None:
        name = (user or self.default_user).split("@", 1)[0]
        base = self.root / "mail" / name
        folder = base if mailbox.upper() == "INBOX" else base / f".{mailbox}"
        for file in folder.glob("dovecot*"):
            file.unlink(missing_ok=True)
        time.sleep(1.1)  # UIDVALIDITY is a timestamp: make sure the new one differs
