"""Set-up never removes a package: the FUSE flavour it picks by what the host
has, the apt command it builds, and what apt would do with it on a host whose
FUSE is fuse3 (simulated: apt-get -s over a copy of dpkg's status)."""
import os
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"
STATUS = Path("/var/lib/dpkg/status")
LEAVES = ("nftables", "ethtool", "bpftool")  # packages of the test set-up that nothing here depends on


def fake_dpkg(tmp_path, admindir):
    """A dpkg-query that answers from another dpkg database."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    query = bin_dir / "dpkg-query"
    query.write_text('#!/bin/sh\nexec /usr/bin/dpkg-query --admindir="%s" "$@"\n' % admindir)
    query.chmod(0o755)
    return dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]))


def stanza(text, package):
    return next((s for s in text.split("\n\n") if s.startswith("Package: %s\n" % package)), None)


def admindir_with(tmp_path, drop=(), add=()):
    """A copy of this host's dpkg database without the packages drop and with
    those of add as installed (their stanzas from apt's lists)."""
    stanzas = [s for s in STATUS.read_text().split("\n\n")
               if s.strip() and not any(s.startswith("Package: %s\n" % p) for p in drop)]
    for package in add:
        shown = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True, check=True).stdout
        fields = [line for line in shown.split("\n\n")[0].splitlines()
                  if not line.startswith(("Filename:", "Size:", "MD5sum:", "SHA", "Description-md5:", "Tag:"))]
        fields.insert(1, "Status: install ok installed")
        stanzas = [s for s in stanzas if not s.startswith("Package: %s\n" % package)] + ["\n".join(fields)]
    admindir = tmp_path / ("dpkg-" + "-".join(("no-",) + tuple(drop) + ("with-",) + tuple(add)))
    (admindir / "updates").mkdir(parents=True)
    (admindir / "status").write_text("\n\n".join(stanzas) + "\n\n")
    return admindir


def plan(env, *args):
    out = subprocess.run([str(SETUP), "--print-plan", *args], env=env, capture_output=True, text=True, check=True)
    binding, install = out.stdout.splitlines()
    return binding, install.split()


@pytest.fixture
def fuse3_host(tmp_path):
    if "Package: fuse3\n" not in subprocess.run(["apt-cache", "show", "fuse3"], capture_output=True,
                                                 text=True).stdout:
        pytest.fail("apt knows no fuse3 (run apt-get update): this test needs Debian's lists")
    # a few test tools missing too, so that there is something to install
    return admindir_with(tmp_path, drop=("fuse",) + LEAVES, add=("fuse3",))


def test_a_host_with_fuse3_gets_libfuse3_and_no_fuse2(tmp_path, fuse3_host):
    binding, install = plan(fake_dpkg(tmp_path, fuse3_host), "--test")
    assert binding == "binding: fuse3 (mfusepy)"
    assert install[:5] == ["install:", "apt-get", "install", "-y", "-qq"] and "--no-remove" in install
    assert "fuse" not in install and "fuse3" not in install  # fuse3 is there; fuse 2 would remove it


def test_a_host_with_fuse2_keeps_it_and_a_bare_host_gets_fuse3(tmp_path):
    with_fuse2 = admindir_with(tmp_path, drop=("fuse3", "fuse"), add=("fuse",))
    binding, install = plan(fake_dpkg(tmp_path, with_fuse2))
    assert binding == "binding: fuse2 (fuse)" and "fuse3" not in install
    bare = admindir_with(tmp_path, drop=("fuse3", "fuse", "libfuse3-3", "libfuse2"))
    binding, install = plan(fake_dpkg(tmp_path, bare))
    assert binding == "binding: fuse3 (mfusepy)"
    assert "fuse3" in install and "libfuse3-3" in install and "fuse" not in install and "--no-remove" in install


def apt_simulation(admindir, packages):
    return subprocess.run(["apt-get", "-s", "-o", "Dir::State::status=%s" % (admindir / "status"), "install"]
                          + packages, capture_output=True, text=True)


def test_on_a_fuse3_host_apt_would_remove_nothing(tmp_path, fuse3_host):
    # the simulated host is real enough: installing fuse 2 there would remove fuse3
    assert "Remv fuse3" in apt_simulation(fuse3_host, ["fuse"]).stdout
    _binding, install = plan(fake_dpkg(tmp_path, fuse3_host), "--test")
    packages = [word for word in install[1:] if not word.startswith("-") and word not in ("apt-get", "install")]
    assert set(LEAVES) <= set(packages)
    simulated = apt_simulation(fuse3_host, ["--no-remove"] + packages)
    assert simulated.returncode == 0, simulated.stderr
    assert "Remv " not in simulated.stdout and "Inst nftables " in simulated.stdout


def test_the_service_unit_mount_sh_installs_passes_systemd_analyze_verify(tmp_path):
    """What --install-service writes: deploy/drop-packet.service with this
    checkout's path; verify checks its every command exists and runs."""
    repo = SETUP.parents[1]
    unit = tmp_path / "drop-packet.service"
    unit.write_text(subprocess.run([str(repo / "mount.sh"), "--print-service"], capture_output=True, text=True,
                                   check=True).stdout)
    assert "@REPO@" not in unit.read_text() and "ExecStart=%s/.venv/bin/python -m procfs_fuse mount" % repo \
        in unit.read_text()
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    broken = tmp_path / "broken.service"  # the check is real: a command that is not there fails it
    broken.write_text(unit.read_text().replace("service-activate.sh", "service-activate-gone.sh"))
    assert subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True).returncode != 0
