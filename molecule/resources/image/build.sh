#!/usr/bin/env bash
# Build kubelab's offline TEST node images, with no container registry:
#
#   localhost/kubelab-node:debian12  Debian 12 + systemd, as a Debian node
#   localhost/kubelab-node:el8       the same Debian userland dressed as Rocky
#                                    Linux 8.10 (dnf, rpm, firewalld, release
#                                    files) so the RedHat-family task path runs
#                                    for real. It is NOT an EL8 system.
#   localhost/kubelab-node:el9       the same, dressed as Rocky Linux 9.5.
#
# Each node's `uname -r` prints the kernel release of the OS it stands for
# (a test-only wrapper in /usr/local/bin; the kernel itself is the host's):
# kubeadm's SystemVerification stand-in reads it as the real one reads the
# kernel, and the roles read it as they would on a real node.
#
# Root file systems come from debootstrap (Debian's archive is the only source)
# and are turned into images with `podman import`. An image is rebuilt only
# when its recipe (this directory's files) changed: the recipe hash is stored
# in the image label kubelab.recipe.
#
# Usage: build.sh [all|debian12|el8|el9] [--force]
# Env:   KUBELAB_DEBIAN_MIRROR (default http://deb.debian.org/debian)
#        KUBELAB_IMAGE_CACHE   (default /var/cache/kubelab-image)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mirror=${KUBELAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${KUBELAB_IMAGE_CACHE:-/var/cache/kubelab-image}
suite=bookworm
stage_version=1
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/../containers.conf}

say() { printf '[image] %s\n' "$*"; }
die() { printf '[image] ERROR: %s\n' "$*" >&2; exit 1; }

want=all
force=0
for arg in "$@"; do
  case "$arg" in
    all|debian12|el8|el9) want=$arg ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (expected all, debian12, el8, el9 or --force)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root: debootstrap and rootful podman need it"
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "'$tool' is missing. Install it with: apt-get install -y podman runc debootstrap"
done

# Packages of every node. python3-apt: Ansible's apt module; openssl: the
# kubeadm stand-in's certificates; kmod/iproute2/procps: what the roles call.
base_pkgs=systemd,systemd-sysv,dbus,python3,python3-apt,python3-venv,iproute2,iputils-ping,procps,kmod,ca-certificates,openssl,gnupg,netbase,sudo,less
# The EL-flavoured node adds Debian's dnf/rpm tooling and firewalld.
el_pkgs=dnf,python3-dnf,dnf-plugins-core,rpm,createrepo-c,firewalld,python3-firewall
# What the pod-runtime TEST DOUBLE (molecule/resources/standins/podrt) runs the
# test workloads' images with (a pod's files are the node's, see its
# CONTRACT.md), and nft for the kube-proxy double. nginx.service is masked:
# nothing on a node serves port 80 but the nginx pods.
pod_pkgs=nftables,nginx-light,busybox

recipe_hash() {
  # The flavour name, the package lists and every file of this directory.
  { echo "$1 $base_pkgs $el_pkgs $pod_pkgs $suite"; cat "$here"/build.sh "$here"/files/* 2>/dev/null; } |
    sha256sum | cut -c1-16
}

image_current() {
  local ref=$1 hash=$2 have
  have=$(podman image inspect "$ref" --format '{{ index .Labels "kubelab.recipe" }}' 2>/dev/null || true)
  [ "$have" = "$hash" ]
}

check_archive() {
  # A TCP connect to the mirror's host and port (from the URL; 80 or 443).
  local host port
  host=$(echo "$mirror" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')
  port=$(echo "$mirror" | sed -nE 's#^[a-z]+://[^/:]+:([0-9]+).*#\1#p')
  [ -n "$port" ] || case "$mirror" in https:*) port=443 ;; *) port=80 ;; esac
  if ! timeout 20 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    die "Debian archive $mirror cannot be reached; set KUBELAB_DEBIAN_MIRROR to a reachable mirror"
  fi
}

bootstrap() {
  # bootstrap DIR PACKAGES: debootstrap with a shared package cache.
  local dir=$1 pkgs=$2 log
  log=$(mktemp)
  mkdir -p "$cache/debs"
  say "debootstrap $suite into $dir (packages are cached in $cache/debs)"
  if ! debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$pkgs" \
      "$suite" "$dir" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    die "debootstrap failed (last lines above); is $mirror reachable?"
  fi
  rm -f "$log"
}

chroot_install() {
  # chroot_install DIR PACKAGES: apt-get inside the new root. firewalld's
  # dependency polkitd does not configure under debootstrap, but does here.
  local root=$1 pkgs=$2 log
  log=$(mktemp)
  say "installing ${pkgs//,/ } in the root file system"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
  # no service starts inside the build chroot
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc"
  mkdir -p "$cache/debs"
  mount --bind "$cache/debs" "$root/var/cache/apt/archives"
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/kubelab-build"
  if ! chroot "$root" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${pkgs//,/ }" >"$log" 2>&1; then
    umount "$root/proc" "$root/var/cache/apt/archives"
    tail -n 20 "$log" >&2
    rm -f "$log"
    die "apt-get in the new root failed (last lines above)"
  fi
  umount "$root/proc" "$root/var/cache/apt/archives"
  rm -f "$log" "$root/etc/resolv.conf" "$root/etc/dpkg/dpkg.cfg.d/kubelab-build" "$root/usr/sbin/policy-rc.d"
  touch "$root/etc/resolv.conf"
}

el_stage() {
  cached_stage "$1" base bootstrap "$base_pkgs"
  chroot_install "$1" "$el_pkgs,$pod_pkgs"
}

debian_stage() {
  cached_stage "$1" base bootstrap "$base_pkgs"
  chroot_install "$1" "$pod_pkgs"
}

cached_stage() {
  # cached_stage DIR NAME CMD [ARGS]: run CMD DIR ARGS to fill DIR, or unpack
  # the tarball a previous run saved for the same package lists. The
  # customisation steps after it always run.
  local dir=$1 name=$2 cmd=$3 key tarball
  shift 3
  # Bump stage_version when bootstrap/chroot_install change what they produce.
  key=$(echo "$stage_version $name $base_pkgs $el_pkgs $pod_pkgs $suite $mirror" | sha256sum | cut -c1-16)
  tarball="$cache/rootfs-$name-$key.tar"
  mkdir -p "$dir" "$cache"
  if [ -f "$tarball" ]; then
    say "reusing the $name root file system from $tarball"
    tar --numeric-owner -C "$dir" -xf "$tarball"
    return
  fi
  "$cmd" "$dir" "$@"
  rm -f "$cache"/rootfs-"$name"-*.tar
  tar --numeric-owner -C "$dir" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
}

common_setup() {
  local root=$1
  # systemd in a container: no consoles, no udev-driven mounts, no swap.
  # Kernel file systems belong to the host: mounting configfs in a container
  # has been seen to hang the whole boot (sys-kernel-config.mount waiting).
  for unit in getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
      systemd-remount-fs.service dev-hugepages.mount sys-kernel-debug.mount sys-kernel-config.mount \
      sys-kernel-tracing.mount sys-fs-fuse-connections.mount swap.target \
      apt-daily.timer apt-daily-upgrade.timer nginx.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  : >"$root/etc/machine-id"
  printf 'LANG=C.UTF-8\n' >"$root/etc/default/locale"
  # Test nodes log to the journal only.
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' >"$root/etc/systemd/journald.conf.d/kubelab.conf"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  # Sources for a node that wants Debian packages (the stand-in repo is
  # bind-mounted; nodes need no network).
  printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
  # no service starts inside the build chroot
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
}

fake_kernel() {
  # fake_kernel ROOT RELEASE: `uname` as the OS it stands for reports it. The
  # release file is the wrapper's own; nothing outside the test lab reads it.
  local root=$1 release=$2
  mkdir -p "$root/etc/kubelab-test" "$root/usr/local/bin"
  echo "$release" >"$root/etc/kubelab-test/kernel-release"
  cat >"$root/usr/local/bin/uname" <<'WRAP'
#!/bin/sh
# TEST DOUBLE (kubelab test node): uname with the kernel release of the OS
# this node stands for (/etc/kubelab-test/kernel-release); all else is real.
fake=$(cat /etc/kubelab-test/kernel-release 2>/dev/null)
real=$(/usr/bin/uname -r)
[ -n "$fake" ] || exec /usr/bin/uname "$@"
out=$(/usr/bin/uname "$@") || exit $?
printf '%s\n' "$out" | sed "s/$real/$fake/g"
WRAP
  chmod 0755 "$root/usr/local/bin/uname"
}

el_setup() {
  # el_setup ROOT MAJOR: release files of Rocky Linux 8.10 or 9.5. Without
  # rocky-release and the redhat-release/system-release links Ansible says
  # os_family "Rocky Linux".
  local root=$1 major=$2 version name
  case "$major" in
    8) version=8.10 name="Green Obsidian" ;;
    9) version=9.5 name="Blue Onyx" ;;
  esac
  rm -f "$root/etc/os-release" "$root/usr/lib/os-release"
  cp "$here/files/os-release.rocky$major" "$root/usr/lib/os-release"
  ln -s ../usr/lib/os-release "$root/etc/os-release"
  echo "Rocky Linux release $version ($name)" >"$root/etc/rocky-release"
  ln -sf rocky-release "$root/etc/redhat-release"
  ln -sf rocky-release "$root/etc/system-release"
  # /etc/sysconfig exists on every EL system (filesystem/setup packages)
  mkdir -p "$root/etc/yum.repos.d" "$root/etc/dnf/plugins" "$root/etc/rpm" "$root/var/lib/rpm" "$root/etc/sysconfig"
  echo '%_dbpath /var/lib/rpm' >"$root/etc/rpm/macros.dbpath"
  cp "$here/files/dnf.conf" "$root/etc/dnf/dnf.conf"
  # Debian's dnf ships a 'local' plugin EL does not have.
  printf '[main]\nenabled=0\n' >"$root/etc/dnf/plugins/local.conf"
  # The rpm database must know a release package and the base capabilities
  # so that dnf can resolve dependencies (Requires: /bin/sh and friends).
  build_shim_rpm "$root" "$version" "$major"
  # The distribution's own repository for what a bare node installs from it
  # (EL8: python3.11 from AppStream): the stand-in repository's appstream/
  # tree, bind-mounted like the rest. Skipped when the tree is absent.
  cat >"$root/etc/yum.repos.d/kubelab-test-appstream.repo" <<REPO
# TEST DOUBLE (kubelab test node): stands for Rocky Linux $major's AppStream.
[appstream]
name=Rocky Linux $major - AppStream (kubelab test double)
baseurl=file:///srv/kubelab-standins/appstream/el$major
enabled=1
gpgcheck=0
skip_if_unavailable=True
REPO
  # firewalld is enabled as on EL.
  chroot "$root" systemctl enable firewalld.service >/dev/null 2>&1 || true
}

el8_setup() {
  local root=$1
  el_setup "$root" 8
  fake_kernel "$root" 4.18.0-553.el8_10.x86_64
  # No Python for ansible-core yet, as on a fresh EL8 node: its platform
  # Python is 3.6. Ansible's interpreter comes from the test AppStream's
  # kubelab-test-python package (a venv WITHOUT dnf/firewall/selinux
  # bindings, as python3.11 on a real EL8, whose bindings exist only for
  # platform-python 3.6). Check that such a venv cannot import dnf.
  chroot "$root" /usr/bin/python3 -m venv --without-pip /tmp/kubelab-venv-check
  chroot "$root" /tmp/kubelab-venv-check/bin/python3 -c 'import dnf' 2>/dev/null &&
    die "a venv on the EL8 test node can import dnf; it must not"
  rm -rf "$root/tmp/kubelab-venv-check"
  # firewalld 0.9 (EL8) has no intra-zone forwarding: its FORWARD chain
  # rejects what no zone accepts (firewalld v0.9.x src/firewall/core/nftables.py).
  # Debian's firewalld 1.3 enables forwarding inside the shipped zones with
  # <forward/>; without it 1.3 behaves as 0.9 does.
  sed -i '/<forward\/>/d' "$root"/usr/lib/firewalld/zones/*.xml
  grep -l '<forward' "$root"/usr/lib/firewalld/zones/*.xml >/dev/null 2>&1 &&
    die "a firewalld zone of the EL8 test node still forwards inside the zone"
  true
}

el9_setup() {
  local root=$1
  el_setup "$root" 9
  fake_kernel "$root" 5.14.0-503.14.1.el9_5.x86_64
  # EL9's platform Python (3.9) is /usr/bin/python3 with the dnf, firewall
  # and SELinux bindings: Debian's python3 with python3-dnf and
  # python3-firewall stands for it.
  chroot "$root" /usr/bin/python3 -c 'import dnf, firewall' ||
    die "the EL9 test node's /usr/bin/python3 cannot import dnf and firewall"
}

build_shim_rpm() {
  local root=$1 version=$2 major=$3 top
  top=$(mktemp -d)
  mkdir -p "$top"/{SPECS,RPMS,BUILD,SOURCES,SRPMS}
  cp "$here/files/kubelab-el-shim.spec" "$top/SPECS/"
  chroot_path=/tmp/kubelab-shim
  rm -rf "$root$chroot_path"
  cp -a "$top" "$root$chroot_path"
  chroot "$root" rpmbuild --quiet --define "_topdir $chroot_path" --define "elversion $version" \
    --define "elmajor $major" -bb "$chroot_path/SPECS/kubelab-el-shim.spec" >/dev/null
  chroot "$root" sh -c "rpm -i --nodeps $chroot_path/RPMS/noarch/*.rpm"
  rm -rf "$root$chroot_path" "$top"
}

import_image() {
  local root=$1 ref=$2 hash=$3
  say "podman import -> $ref"
  tar --numeric-owner -C "$root" -c . |
    podman import --quiet --change 'CMD=["/sbin/init"]' --change "LABEL=kubelab.recipe=$hash" \
      --change 'STOPSIGNAL=SIGRTMIN+3' - "$ref" >/dev/null
}

build_flavour() {
  local flavour=$1 ref="localhost/kubelab-node:$1" hash work start
  hash=$(recipe_hash "$flavour")
  if [ "$force" = 0 ] && image_current "$ref" "$hash"; then
    say "$ref is up to date (recipe $hash)"
    return
  fi
  start=$(date +%s)
  check_archive
  work=$(mktemp -d /var/tmp/kubelab-image.XXXXXX)
  trap 'rm -rf "$work"' RETURN
  case "$flavour" in
    debian12) cached_stage "$work/root" "debian" debian_stage ;;
    el8|el9) cached_stage "$work/root" "el" el_stage ;;
  esac
  common_setup "$work/root"
  case "$flavour" in
    debian12) fake_kernel "$work/root" 6.1.0-28-amd64 ;;
    el8) el8_setup "$work/root" ;;
    el9) el9_setup "$work/root" ;;
  esac
  import_image "$work/root" "$ref" "$hash"
  say "$ref built in $(( $(date +%s) - start ))s (recipe $hash)"
}

case "$want" in
  all) build_flavour debian12; build_flavour el8; build_flavour el9 ;;
  *) build_flavour "$want" ;;
esac
