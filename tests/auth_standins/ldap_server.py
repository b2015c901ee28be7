"""A private OpenLDAP directory for the LDAP auth tests: Debian's ``slapd`` on a free loopback port,
with its configuration and database in a temporary folder, loaded from a small LDIF (users under
``ou=users``, a posixGroup ``admins`` under ``ou=groups``). Users bind with their own passwords
(cleartext ``userPassword``, compared by slapd); nobody may read a password.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BASE = "dc=example,dc=com"
USERS = f"ou=users,{BASE}"
GROUPS = f"ou=groups,{BASE}"
# uid -> password. "dan,admin+x" needs DN escaping to bind at all; "ev*" is not in the group, but an
# unescaped filter (memberUid=ev*) would match "ev-admin", who is.
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "dan,admin+x": "dan-pw", "ev*": "ev-pw", "ev-admin": "eva-pw"}
ADMINS = ["alice", "dan,admin+x", "ev-admin"]


def find_slapd() -> str | None:
    return shutil.which("slapd") or next((p for p in ("/usr/sbin/slapd",) if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _escape_rdn(value: str) -> str:
    return "".join("\\" + c if c in '\\,=+<>#;"' else c for c in value)


def _ldif() -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
        f"dn: {USERS}\nobjectClass: organizationalUnit\nou: users\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for number, (uid, password) in enumerate(PASSWORDS.items()):
        entries.append(
            f"dn: uid={_escape_rdn(uid)},{USERS}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
            f"sn: User{number}\nuserPassword: {password}\n")
    members = "".join(f"memberUid: {uid}\n" for uid in ADMINS)
    entries.append(f"dn: cn=admins,{GROUPS}\nobjectClass: posixGroup\ncn: admins\ngidNumber: 5000\n{members}")
    entries.append(f"dn: cn=staff,{GROUPS}\nobjectClass: posixGroup\ncn: staff\ngidNumber: 5001\nmemberUid: bob\n")
    return "\n".join(entries)


def _config(folder: Path) -> str:
    schemas = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in ("core", "cosine", "nis", "inetorgperson"))
    return (
        f"{schemas}modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        f"pidfile {folder}/slapd.pid\nargsfile {folder}/slapd.args\n"
        f"database mdb\nmaxsize 10485760\nsuffix \"{BASE}\"\n"
        f"rootdn \"cn=admin,{BASE}\"\nrootpw admin-secret-{os.getpid()}\ndirectory {folder}/db\n"
        "access to attrs=userPassword by self =x by anonymous auth by * none\n"
        "access to * by users read by * none\n"
    )


@dataclass
class Directory:
    url: str
    folder: Path
    process: subprocess.Popen[bytes]


@contextmanager
def running_directory() -> Iterator[Directory]:
    """A started slapd (raises RuntimeError if it does not come up); stopped and removed afterwards."""
    slapd = find_slapd()
    if slapd is None:
        raise RuntimeError("slapd is not installed")
    folder = Path(tempfile.mkdtemp(prefix="bastion-ldap-"))
    (folder / "db").mkdir()
    conf = folder / "slapd.conf"
    conf.write_text(_config(folder))
    (folder / "data.ldif").write_text(_ldif())
    slapadd = Path(slapd).with_name("slapadd")
    loaded = subprocess.run([str(slapadd), "-f", str(conf), "-l", str(folder / "data.ldif")],
                            capture_output=True, timeout=60)
    if loaded.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"slapadd failed: {loaded.stderr.decode()[-2000:]}")
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    log = open(folder / "slapd.log", "wb")  # noqa: SIM115 - closed with the process
    # -d 0: stay in the foreground (so the process is ours to stop) without debug output.
    process = subprocess.Popen([slapd, "-f", str(conf), "-h", url + "/", "-d", "0"], stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"slapd exited: {(folder / 'slapd.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("slapd did not start listening") from None
                time.sleep(0.1)
        yield Directory(url, folder, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
