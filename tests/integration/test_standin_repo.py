"""Integration tests of the stand-in package repositories (TEST DOUBLES).

`molecule/resources/standins/build.sh` is run into a temporary directory and
its output is checked the way apt and dnf would use it: apt metadata read by
apt itself (with a private state directory), every signature verified with
the key the build generated, rpm headers and signatures, createrepo_c
metadata, stamp-based reuse. When the offline node images exist, the
packages are installed with apt and with dnf inside throw-away containers.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STANDINS = ROOT / "molecule" / "resources" / "standins"
BUILD = STANDINS / "build.sh"
CONTAINERS_CONF = ROOT / "molecule" / "resources" / "containers.conf"
HOST_TOOLS = ["dpkg-deb", "apt-ftparchive", "rpmbuild", "rpmsign", "createrepo_c", "gpg", "gpgv", "file"]


def _packages():
    """name -> (repo, version, release) of the packages built as .deb and .rpm in REPO/v1.NN/."""
    result = {}
    for env in sorted(STANDINS.glob("pkgs/*/package.env")):
        values = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', env.read_text(), re.M))
        if values.get("RPM_REPO_DIR"):
            continue
        repo = values.get("REPO") or ("cri-o" if values["NAME"] == "cri-o" else "core")
        result[values["NAME"]] = (repo, values["VERSION"], values["RELEASE"])
    return result


def _rpm_only():
    """name -> (directory under OUTDIR, version, release) of the packages built as an .rpm only (RPM_REPO_DIR)."""
    result = {}
    for env in sorted(STANDINS.glob("pkgs/*/package.env")):
        values = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', env.read_text(), re.M))
        if values.get("RPM_REPO_DIR"):
            result[values["NAME"]] = (values["RPM_REPO_DIR"], values["VERSION"], values["RELEASE"])
    return result


PACKAGES = _packages()
RPM_ONLY = _rpm_only()


def _need_tools():
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip("host tools missing: %s (apt-get install dpkg-dev apt-utils rpm createrepo-c gnupg gpgv file)"
                    % " ".join(missing))


def run_build(outdir, script=BUILD, env=None):
    full_env = dict(os.environ)
    full_env.pop("KUBELAB_STANDINS_FORCE", None)
    if env:
        full_env.update(env)
    return subprocess.run(["bash", str(script), str(outdir)], capture_output=True, text=True,
                          env=full_env, timeout=1500)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    _need_tools()
    out = tmp_path_factory.mktemp("standins-out")
    started = time.monotonic()
    result = run_build(out)
    assert result.returncode == 0, result.stdout + result.stderr
    print("build.sh took %.1f s" % (time.monotonic() - started))
    return out


@pytest.fixture(scope="module")
def keyring(repo, tmp_path_factory):
    """The generated public key (from cri-o's Release.key), dearmored for gpgv."""
    path = tmp_path_factory.mktemp("keyring") / "standins.gpg"
    armored = (repo / "cri-o" / "v1.35" / "deb" / "Release.key").read_bytes()
    assert armored.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    dearmored = subprocess.run(["gpg", "--batch", "--dearmor"], input=armored, capture_output=True, check=True)
    path.write_bytes(dearmored.stdout)
    return path


def gpgv(keyring, *files):
    return subprocess.run(["gpgv", "--keyring", str(keyring), *map(str, files)], capture_output=True, text=True)


def repo_dirs(repo):
    return sorted({(r, "v" + v.rsplit(".", 1)[0]) for r, v, _rel in PACKAGES.values()})


# ------------------------------------------------------------ layout and apt

def test_layout_has_both_formats_for_every_package(repo):
    assert PACKAGES, "no stand-in packages found"
    for name, (repo_name, version, release) in PACKAGES.items():
        minor = "v" + version.rsplit(".", 1)[0]
        debs = list((repo / repo_name / minor / "deb").glob("%s_%s-%s.1_*.deb" % (name, version, release)))
        rpms = list((repo / repo_name / minor / "rpm").glob("%s-%s-%s.*.rpm" % (name, version, release)))
        assert len(debs) == 1, (name, debs)
        assert len(rpms) == 1, (name, rpms)
    assert sorted(p.name for p in (repo / "core" / "v1.35" / "deb").glob("*.deb")) == sorted(
        p.name for p in (repo / "core" / "v1.35" / "deb").glob("*.deb") if not p.name.startswith("cri-o"))


def test_apt_index_matches_files_and_pinned_versions(repo):
    for repo_name, minor in repo_dirs(repo):
        deb = repo / repo_name / minor / "deb"
        stanzas = [s for s in (deb / "Packages").read_text().split("\n\n") if s.strip()]
        assert gzip.decompress((deb / "Packages.gz").read_bytes()).decode() == (deb / "Packages").read_text()
        names = set()
        for stanza in stanzas:
            fields = dict(re.findall(r"^([A-Za-z0-9-]+): (.*)$", stanza, re.M))
            names.add(fields["Package"])
            assert re.fullmatch(r"1\.35\.0-\d+\.1", fields["Version"]), fields["Version"]
            assert fields["Version"].startswith("1.35.")  # what `apt-get install NAME=1.35.*` matches
            data = (deb / fields["Filename"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == fields["SHA256"]
            assert int(fields["Size"]) == len(data)
            assert "TEST DOUBLE" in stanza or "TEST fixture" in stanza
        expected = {n for n, (r, _v, _rel) in PACKAGES.items() if r == repo_name}
        assert names == expected
        release = (deb / "Release").read_text()
        for index in ("Packages", "Packages.gz"):
            digest = hashlib.sha256((deb / index).read_bytes()).hexdigest()
            assert re.search(r"^ %s +\d+ %s$" % (digest, re.escape(index)), release, re.M), index


def test_apt_signatures_verify_with_generated_key(repo, keyring, tmp_path):
    for repo_name, minor in repo_dirs(repo):
        deb = repo / repo_name / minor / "deb"
        inline = gpgv(keyring, deb / "InRelease")
        assert inline.returncode == 0, inline.stderr
        detached = gpgv(keyring, deb / "Release.gpg", deb / "Release")
        assert detached.returncode == 0, detached.stderr
        tampered = tmp_path / "Release"
        tampered.write_text((deb / "Release").read_text() + "Suite: forged\n")
        assert gpgv(keyring, deb / "Release.gpg", tampered).returncode != 0


def test_apt_reads_the_repositories_with_signed_by(repo, tmp_path):
    """apt-get update + apt-cache policy with a private apt state (host untouched)."""
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get not available")
    state = tmp_path / "apt"
    for sub in ("state/lists/partial", "cache/archives/partial", "etc/apt.conf.d", "etc/preferences.d",
                "etc/trusted.gpg.d", "keys"):
        (state / sub).mkdir(parents=True)
    lines = []
    for repo_name, minor in repo_dirs(repo):
        key = state / "keys" / ("%s.asc" % repo_name)
        shutil.copy(repo / repo_name / minor / "deb" / "Release.key", key)
        lines.append("deb [signed-by=%s] file://%s/ /" % (key, repo / repo_name / minor / "deb"))
    (state / "etc" / "sources.list").write_text("\n".join(lines) + "\n")
    opts = [
        "-o", "Dir::State=%s" % (state / "state"),
        "-o", "Dir::Cache=%s" % (state / "cache"),
        "-o", "Dir::Etc=%s" % (state / "etc"),
        "-o", "Dir::Etc::SourceParts=%s" % (state / "etc" / "sources.list.d"),
        "-o", "Dir::Etc::Parts=%s" % (state / "etc" / "apt.conf.d"),
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root",
    ]
    update = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True, timeout=120)
    assert update.returncode == 0, update.stdout + update.stderr
    assert "W:" not in update.stdout + update.stderr, update.stdout + update.stderr
    policy = subprocess.run(["apt-cache", *opts, "policy", *PACKAGES], capture_output=True, text=True)
    for name in PACKAGES:
        block = policy.stdout.split(name + ":", 1)[1]
        assert "Candidate: 1.35.0-1.1" in block, policy.stdout


# ------------------------------------------------------------ rpm and dnf metadata

def rpm_query(path, fmt):
    result = subprocess.run(["rpm", "-qp", "--nosignature", "--qf", fmt, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rpm_headers_versions_and_config_files(repo):
    for name, (repo_name, version, release) in PACKAGES.items():
        minor = "v" + version.rsplit(".", 1)[0]
        (path,) = (repo / repo_name / minor / "rpm").glob("%s-*.rpm" % name)
        info = subprocess.run(["rpm", "-qpi", "--nosignature", str(path)], capture_output=True, text=True)
        assert info.returncode == 0, info.stderr
        assert re.search(r"^Name\s+: %s$" % re.escape(name), info.stdout, re.M)
        assert re.search(r"^Version\s+: 1\.35\.0$", info.stdout, re.M)  # `dnf install NAME-1.35.*`
        assert re.search(r"^Release\s+: %s$" % release, info.stdout, re.M)
        assert re.search(r"^Signature\s+: RSA/", info.stdout, re.M), info.stdout
        files = rpm_query(path, "[%{FILENAMES} %{FILEFLAGS:fflags}\n]")
        for line in files.splitlines():
            file_name, _, flags = line.partition(" ")
            if file_name.startswith("/etc/") and not file_name.endswith("/") and "c" not in flags:
                # directories have no flags; regular files under /etc must be %config(noreplace)
                mode = rpm_query(path, "[%{FILENAMES} %{FILEMODES:perms}\n]")
                assert ("%s d" % file_name) in mode, line
            elif file_name.startswith("/etc/") and "c" in flags:
                assert "n" in flags, line


def test_cri_o_package_contents(repo):
    (rpm_path,) = (repo / "cri-o" / "v1.35" / "rpm").glob("cri-o-*.rpm")
    files = set(rpm_query(rpm_path, "[%{FILENAMES}\n]").split())
    assert {"/usr/bin/crio", "/usr/lib/systemd/system/crio.service",
            "/etc/crio/crio.conf.d", "/etc/crio/crio.conf.d/10-crio.conf",
            "/etc/containers/registries.conf.d/crio.conf", "/etc/cni/net.d/10-crio-bridge.conflist.disabled"} <= files
    assert "/etc/crio/crio.conf" not in files  # CRI-O 1.35's packages ship none (cri-o/packaging cri-o.spec)
    assert rpm_query(rpm_path, "%{ARCH}") == "noarch"
    assert "python3" in rpm_query(rpm_path, "[%{REQUIRENAME}\n]").split()
    (deb_path,) = (repo / "cri-o" / "v1.35" / "deb").glob("cri-o_*.deb")
    conffiles = subprocess.run(["dpkg-deb", "-f", str(deb_path), "Package"], capture_output=True, text=True)
    assert conffiles.stdout.strip() == "cri-o"
    ctrl = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb_path)], capture_output=True, check=True)
    listing = subprocess.run(["tar", "-xOf", "-", "./conffiles"], input=ctrl.stdout, capture_output=True, check=True)
    assert set(listing.stdout.decode().split()) == {"/etc/crio/crio.conf.d/10-crio.conf",
                                                    "/etc/containers/registries.conf.d/crio.conf",
                                                    "/etc/cni/net.d/10-crio-bridge.conflist.disabled"}


def test_kubectl_package_carries_a_real_kubectl(repo, tmp_path):
    (deb_path,) = (repo / "core" / "v1.35" / "deb").glob("kubectl_*.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb_path), str(tmp_path)], check=True)
    version = subprocess.run([str(tmp_path / "usr" / "bin" / "kubectl"), "version", "--client=true", "-o", "json"],
                             capture_output=True, text=True)
    assert version.returncode == 0, version.stderr
    assert '"minor": "36"' in version.stdout  # within kubectl's +-1 minor skew of 1.35
    assert deb_path.name.endswith("_amd64.deb")


def test_rpm_signatures_verify_with_repo_key(repo, keyring, tmp_path):
    for repo_name, minor in repo_dirs(repo):
        rpm_dir = repo / repo_name / minor / "rpm"
        dbpath = tmp_path / ("rpmdb-" + repo_name)
        dbpath.mkdir()
        imported = subprocess.run(["rpm", "--dbpath", str(dbpath), "--import",
                                   str(rpm_dir / "repodata" / "repomd.xml.key")], capture_output=True, text=True)
        assert imported.returncode == 0, imported.stderr
        for rpm_file in rpm_dir.glob("*.rpm"):
            check = subprocess.run(["rpm", "--dbpath", str(dbpath), "-K", str(rpm_file)], capture_output=True,
                                   text=True)
            assert check.returncode == 0, check.stdout + check.stderr
            assert "signatures OK" in check.stdout, check.stdout
        signed = gpgv(keyring, rpm_dir / "repodata" / "repomd.xml.asc", rpm_dir / "repodata" / "repomd.xml")
        assert signed.returncode == 0, signed.stderr


def test_createrepo_metadata_lists_the_packages(repo):
    ns = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}
    for repo_name, minor in repo_dirs(repo):
        rpm_dir = repo / repo_name / minor / "rpm"
        repomd = ET.parse(rpm_dir / "repodata" / "repomd.xml").getroot()
        primary = repomd.find("repo:data[@type='primary']/repo:location", ns).get("href")
        assert primary.endswith(".xml.gz")  # gzip: readable by EL8's dnf
        root = ET.fromstring(gzip.decompress((rpm_dir / primary).read_bytes()))
        listed = {(p.find("common:name", ns).text, p.find("common:version", ns).get("ver"))
                  for p in root.findall("common:package", ns)}
        expected = {(n, v) for n, (r, v, _rel) in PACKAGES.items() if r == repo_name}
        expected |= {(n, v) for n, (d, v, _rel) in RPM_ONLY.items() if d == "%s/%s/rpm" % (repo_name, minor)}
        assert listed == expected


def test_container_selinux_is_an_rpm_in_the_cri_o_repository(repo, keyring, tmp_path):
    """EL nodes install container-selinux from the repository the lab configures for cri-o (rpm only)."""
    assert RPM_ONLY["container-selinux"][0] == "cri-o/v1.35/rpm"
    (rpm_path,) = (repo / "cri-o" / "v1.35" / "rpm").glob("container-selinux-*.rpm")
    assert rpm_query(rpm_path, "%{NAME} %{ARCH}") == "container-selinux noarch"
    assert "/usr/share/containers/selinux/contexts" in rpm_query(rpm_path, "[%{FILENAMES}\n]").split()
    assert not list(repo.rglob("container-selinux*.deb"))  # Debian has no such package
    assert "container-selinux" not in (repo / "cri-o" / "v1.35" / "deb" / "Packages").read_text()
    # cri-o does not pull it in (cri-o/packaging's spec has no such Requires): the role must install it
    (crio_rpm,) = (repo / "cri-o" / "v1.35" / "rpm").glob("cri-o-*.rpm")
    assert "container-selinux" not in rpm_query(crio_rpm, "[%{REQUIRENAME}\n]")
    dbpath = tmp_path / "rpmdb"
    dbpath.mkdir()
    subprocess.run(["rpm", "--dbpath", str(dbpath), "--import",
                    str(repo / "cri-o" / "v1.35" / "rpm" / "repodata" / "repomd.xml.key")], check=True)
    check = subprocess.run(["rpm", "--dbpath", str(dbpath), "-K", str(rpm_path)], capture_output=True, text=True)
    assert "signatures OK" in check.stdout, check.stdout + check.stderr


# ------------------------------------------------------------ reuse and errors

@pytest.fixture()
def small_tree(tmp_path):
    """A copy of the stand-in tree with only the cri-o package (fast builds)."""
    _need_tools()
    tree = tmp_path / "standins"
    (tree / "pkgs").mkdir(parents=True)
    shutil.copy(BUILD, tree / "build.sh")
    shutil.copytree(STANDINS / "pkgs" / "cri-o", tree / "pkgs" / "cri-o")
    return tree


def test_rebuild_is_a_no_op_until_the_tree_changes(small_tree, tmp_path):
    out = tmp_path / "out"
    first = run_build(out, small_tree / "build.sh")
    assert first.returncode == 0, first.stderr
    key1 = (out / "cri-o" / "v1.35" / "deb" / "Release.key").read_text()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = run_build(out, small_tree / "build.sh")
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing rewritten
    conf = small_tree / "pkgs" / "cri-o" / "root" / "etc" / "crio" / "crio.conf.d" / "10-crio.conf"
    conf.write_text(conf.read_text() + "\n# changed\n")
    second = run_build(out, small_tree / "build.sh")
    assert second.returncode == 0, second.stderr
    assert "up to date" not in second.stdout
    assert "cri-o 1.35.0: building" in second.stdout
    # The repository keeps its signing key across rebuilds (kept next to OUTDIR,
    # not inside the tree mounted into the nodes), so nodes that trust it stay
    # unchanged; the new packages are signed with it.
    assert "reusing the throw-away signing key" in second.stdout
    assert (out / "cri-o" / "v1.35" / "deb" / "Release.key").read_text() == key1
    assert not list(out.glob("*signing-key*"))
    assert (tmp_path / ".out-signing-key.asc").stat().st_mode & 0o077 == 0
    assert not list(out.glob("*.old"))


def test_missing_tool_is_one_clear_line(small_tree, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in Path(directory).iterdir():
            target = bindir / entry.name
            if entry.name != "createrepo_c" and not target.exists():
                target.symlink_to(entry)
    result = subprocess.run(["/bin/bash", str(small_tree / "build.sh"), str(tmp_path / "out")], capture_output=True,
                            text=True, env={"PATH": str(bindir), "HOME": str(tmp_path)})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "createrepo_c" in lines[0] and "createrepo-c" in lines[0]
    assert not (tmp_path / "out" / "cri-o").exists()


def test_bad_package_env_is_reported(small_tree, tmp_path):
    env = small_tree / "pkgs" / "cri-o" / "package.env"
    env.write_text(env.read_text().replace("VERSION=1.35.0", "VERSION=1.35"))
    result = run_build(tmp_path / "out", small_tree / "build.sh")
    assert result.returncode != 0
    assert "VERSION '1.35' is not X.Y.Z" in result.stderr


# ------------------------------------------------------------ install in test nodes

def _image(tag):
    if shutil.which("podman") is None:
        return None
    name = "localhost/kubelab-node:%s" % tag
    found = subprocess.run(["podman", "image", "exists", name], capture_output=True)
    return name if found.returncode == 0 else None


class Node:
    """A throw-away systemd test node with OUTDIR at /srv/kubelab-standins (read-only, no network)."""

    def __init__(self, image, repo):
        self.name = "kubelab-standin-test-%s" % uuid.uuid4().hex[:8]
        self.env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
        subprocess.run(["podman", "run", "-d", "--name", self.name, "--network", "none",
                        "-v", "%s:/srv/kubelab-standins:ro" % repo, image],
                       check=True, capture_output=True, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.sh("systemctl is-system-running || true").stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.5)

    def sh(self, script, check=False):
        result = subprocess.run(["podman", "exec", self.name, "sh", "-c", script], capture_output=True, text=True,
                                env=self.env, timeout=600)
        if check:
            assert result.returncode == 0, "%s\n%s\n%s" % (script, result.stdout, result.stderr)
        return result

    def remove(self):
        subprocess.run(["podman", "rm", "-f", "-t", "0", self.name], capture_output=True, env=self.env)


def _exercise_crio(node):
    node.sh("systemctl start crio && systemctl is-active crio", check=True)
    before = node.sh("crio status config", check=True).stdout
    assert '"NET_RAW"' not in before
    node.sh("printf '[crio.runtime]\\ndefault_capabilities = [\"CHOWN\", \"NET_RAW\"]\\n' "
            "> /etc/crio/crio.conf.d/default_capabilities.conf", check=True)
    assert '"NET_RAW"' not in node.sh("crio status config", check=True).stdout
    assert '"NET_RAW"' in node.sh("crio config", check=True).stdout
    node.sh("systemctl restart crio", check=True)
    assert 'default_capabilities = ["CHOWN", "NET_RAW"]' in node.sh("crio status config", check=True).stdout
    node.sh("printf '[crio.runtime]\\ndefault_capabilities = [\"NET_RAWW\"]\\n' "
            "> /etc/crio/crio.conf.d/zz-bad.conf", check=True)
    failed = node.sh("systemctl restart crio")
    assert failed.returncode != 0
    journal = node.sh("journalctl -u crio --no-pager", check=True).stdout
    assert "unknown capability" in journal
    node.sh("rm /etc/crio/crio.conf.d/zz-bad.conf && systemctl restart crio && systemctl is-active crio", check=True)
    assert "Client Version: v1.36" in node.sh("kubectl version --client=true", check=True).stdout


@pytest.mark.podman
def test_apt_installs_from_the_repositories_in_a_debian_node(repo):
    image = _image("debian12")
    if image is None:
        pytest.skip("localhost/kubelab-node:debian12 not built (molecule/resources/image/build.sh)")
    node = Node(image, repo)
    try:
        node.sh(
            "set -e; mkdir -p /etc/apt/keyrings; rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*;"
            "cp /srv/kubelab-standins/cri-o/v1.35/deb/Release.key /etc/apt/keyrings/cri-o.asc;"
            "cp /srv/kubelab-standins/core/v1.35/deb/Release.key /etc/apt/keyrings/kubernetes.asc;"
            "echo 'deb [signed-by=/etc/apt/keyrings/cri-o.asc] file:///srv/kubelab-standins/cri-o/v1.35/deb/ /'"
            " > /etc/apt/sources.list.d/cri-o.list;"
            "echo 'deb [signed-by=/etc/apt/keyrings/kubernetes.asc] file:///srv/kubelab-standins/core/v1.35/deb/ /'"
            " > /etc/apt/sources.list.d/kubernetes.list;"
            "apt-get update", check=True)
        node.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y 'cri-o=1.35.*' 'kubectl=1.35.*'", check=True)
        status = node.sh("dpkg-query -W -f '${Status} ${Version}' cri-o kubectl", check=True).stdout
        assert status == "install ok installed 1.35.0-1.1" * 2, status
        _exercise_crio(node)
        node.sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y cri-o", check=True)
        assert node.sh("systemctl is-active crio").stdout.strip() != "active"
    finally:
        node.remove()


@pytest.mark.podman
def test_dnf_installs_from_the_repositories_in_an_el8_node(repo):
    image = _image("el8")
    if image is None:
        pytest.skip("localhost/kubelab-node:el8 not built (molecule/resources/image/build.sh)")
    node = Node(image, repo)
    try:
        repo_file = "".join(
            "[%s]\nname=%s stand-in\nbaseurl=file:///srv/kubelab-standins/%s/v1.35/rpm/\nenabled=1\n"
            "gpgcheck=1\nrepo_gpgcheck=1\ngpgkey=file:///srv/kubelab-standins/%s/v1.35/rpm/repodata/repomd.xml.key\n\n"
            % (name, name, name, name) for name in ("cri-o", "core"))
        node.sh("cat > /etc/yum.repos.d/kubelab-standins.repo <<'EOF'\n%sEOF" % repo_file, check=True)
        install = node.sh("dnf -y install 'cri-o-1.35.*' 'kubectl-1.35.*'", check=True)
        assert "Complete!" in install.stdout
        assert node.sh("rpm -q cri-o", check=True).stdout.strip() == "cri-o-1.35.0-1.noarch"
        # what the crio role installs on EL before cri-o (from the same repository in the lab)
        node.sh("dnf -y install container-selinux", check=True)
        assert node.sh("rpm -q --qf '%{NAME}' container-selinux", check=True).stdout.strip() == "container-selinux"
        _exercise_crio(node)
    finally:
        node.remove()
