"""`make deb` (scripts/build-deb.sh, packaging/debian/): the package a recorder box installs.

Builds the package, installs it with apt-get as an operator would, checks what it installed (the
user, the conffile and its mode, the commands on PATH, the unit), upgrades over itself with a changed
configuration and footage on disk (both kept), removes and purges it (footage still kept).

It installs into the real /opt/vmsd, /etc/vmsd, /usr/bin and /var/lib/vmsd, so it runs only as root
(or in CI, where not being root is then a failure), refuses to run on a machine where any of those
already exist, and removes everything it made at the end.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path("/etc/vmsd/vmsd.toml")
STATE = Path("/var/lib/vmsd")
VENV = Path("/opt/vmsd/venv")
UNIT = Path("/lib/systemd/system/vmsd.service")
OURS = (Path("/opt/vmsd"), Path("/etc/vmsd"), STATE, Path("/usr/bin/vmsd"), Path("/usr/bin/vmsctl"), UNIT)

if os.geteuid() != 0 and os.environ.get("CI") != "true":
    pytest.skip("installs a package system-wide: runs as root or with CI=true", allow_module_level=True)


def _run(
    *argv: str, timeout: float = 300, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # The installed commands must run the package's own code: nothing of this checkout's environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["DEBIAN_FRONTEND"] = "noninteractive"
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL, cwd=cwd
    )
    if check:
        assert result.returncode == 0, f"{' '.join(argv)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _installed() -> bool:
    return _run("dpkg-query", "-W", "-f=${Status}", "vmsd", check=False).stdout == "install ok installed"


def _user_exists() -> bool:
    try:
        pwd.getpwnam("vmsd")
    except KeyError:
        return False
    return True


@pytest.fixture
def clean_machine() -> Iterator[None]:
    assert os.geteuid() == 0, "CI=true but not root: the package test installs system-wide (run it as root)"
    for tool in ("dpkg-deb", "apt-get", "dpkg-statoverride", "systemd-analyze", "runuser", "/usr/bin/python3.11"):
        assert shutil.which(tool), f"{tool} is missing: the package test needs it (make deb-deps, make deps)"
    known = _run("dpkg-query", "-W", "-f=${Status}", "vmsd", check=False).stdout
    existing = [str(p) for p in OURS if p.exists() or p.is_symlink()]
    if known or existing or _user_exists():
        pytest.fail(
            "refusing to test the package over an existing vmsd installation "
            f"(dpkg: {known or 'none'}; paths: {existing}; user vmsd: {_user_exists()})"
        )
    try:
        yield
    finally:
        # Everything the test made, whatever step failed.
        if _run("dpkg-query", "-W", "vmsd", check=False).returncode == 0:
            _run("dpkg", "--purge", "vmsd", check=False)
        shutil.rmtree(STATE, ignore_errors=True)
        Path("/run/vmsd.restart-after-upgrade").unlink(missing_ok=True)
        if _user_exists():
            _run("deluser", "--quiet", "--system", "vmsd", check=False)
        try:
            grp.getgrnam("vmsd")
            _run("delgroup", "--quiet", "--system", "vmsd", check=False)
        except KeyError:
            pass


def _mode(path: Path) -> tuple[str, str, int]:
    st = path.stat()
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, stat.S_IMODE(st.st_mode)


def test_install_upgrade_over_itself_remove_and_purge_keep_config_and_footage(
    clean_machine: None, tmp_path: Path
) -> None:
    started_ns = time.monotonic_ns()
    # gzip: the same contents as `make deb`'s xz package, built in a fraction of the time.
    built = subprocess.run(
        [str(ROOT / "scripts" / "build-deb.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "VMSD_DEB_COMPRESSION": "gzip"},
    )
    assert built.returncode == 0, built.stderr
    (deb,) = tmp_path.glob("vmsd_*.deb")

    # --- Install, as the guide says (no network: Recommends are already there or not needed). ---
    installed = _run("apt-get", "install", "-y", "--no-install-recommends", f"./{deb.name}", cwd=tmp_path, timeout=600)
    assert _installed()
    assert "is installed but not started" in installed.stdout

    user = pwd.getpwnam("vmsd")
    assert user.pw_uid < 1000 and user.pw_shell == "/usr/sbin/nologin" and user.pw_dir == str(STATE)
    assert _mode(STATE) == ("vmsd", "vmsd", 0o750)
    # The conffile: the sample (no usable token), readable by the daemon only.
    assert CONFIG.read_text() == (ROOT / "config" / "vmsd.example.toml").read_text()
    assert _mode(CONFIG) == ("root", "vmsd", 0o640)
    assert _mode(CONFIG.parent) == ("root", "vmsd", 0o750)
    assert str(CONFIG) in _run("dpkg-query", "-W", "-f=${Conffiles}", "vmsd").stdout
    # The commands on PATH run the package's venv.
    for tool in ("vmsd", "vmsctl"):
        assert Path(f"/usr/bin/{tool}").resolve() == VENV / "bin" / tool
        assert f"usage: {tool}" in _run(f"/usr/bin/{tool}", "--help").stdout
    before_ns = time.time_ns()
    checked = _run("runuser", "-u", "vmsd", "--", "/usr/bin/vmsd", "check-config", "--config", str(CONFIG))
    assert f"{CONFIG}: ok" in checked.stdout
    # The bytecode shipped is valid for the installed files: the sandboxed service could not write any.
    fresh = [p for p in VENV.rglob("*.pyc") if p.stat().st_mtime_ns >= before_ns]
    assert fresh == []
    # The unit points at the package's venv and passes systemd's own checks, offline.
    unit = UNIT.read_text()
    assert f"ExecStart={VENV}/bin/vmsd run --config {CONFIG}\n" in unit
    verified = _run("systemd-analyze", "verify", "--man=no", str(UNIT), check=False)
    assert verified.returncode == 0 and (verified.stdout + verified.stderr).strip() == "", verified.stderr

    # --- Upgrade over itself: a site's configuration and footage are kept. ---
    site_config = CONFIG.read_text().replace('recorder_id = "dover-whitfield-01"', 'recorder_id = "site-7"')
    assert site_config != CONFIG.read_text()
    CONFIG.write_text(site_config)
    footage = STATE / "segments" / "cam-1" / "000001.mp4"
    footage.parent.mkdir(parents=True)
    footage.write_bytes(b"\x00\x00\x00\x18ftypiso6" * 100)
    shutil.chown(footage, "vmsd", "vmsd")
    _run("dpkg", "-i", str(deb), timeout=600)
    assert CONFIG.read_text() == site_config
    assert _mode(CONFIG) == ("root", "vmsd", 0o640)
    assert footage.read_bytes() == b"\x00\x00\x00\x18ftypiso6" * 100
    assert pwd.getpwnam("vmsd").pw_uid == user.pw_uid
    assert "site-7" in _run("/usr/bin/vmsd", "check-config", "--config", str(CONFIG)).stdout

    # --- Remove: the software goes, the configuration and footage stay. ---
    _run("dpkg", "--remove", "vmsd")
    assert not Path("/opt/vmsd").exists(), sorted(str(p) for p in Path("/opt/vmsd").rglob("*"))[:20]
    assert not Path("/usr/bin/vmsd").is_symlink() and not UNIT.exists()
    assert CONFIG.read_text() == site_config

    # --- Purge: the configuration goes; footage is never deleted by the package, and it says so. ---
    purged = _run("dpkg", "--purge", "vmsd")
    assert not Path("/etc/vmsd").exists()
    assert "/etc/vmsd" not in _run("dpkg-statoverride", "--list").stdout
    assert footage.read_bytes() == b"\x00\x00\x00\x18ftypiso6" * 100
    assert f"KEPT in {STATE}" in purged.stdout
    print(f"package {deb.stat().st_size / 1e6:.0f} MB (gzip); test {(time.monotonic_ns() - started_ns) / 1e9:.0f} s")
