#!/usr/bin/env bash
# Build kubelab's stand-in package repositories (TEST DOUBLES, molecule only).
#
#   molecule/resources/standins/build.sh OUTDIR
#
# Builds every pkgs/*/ into a .deb and an .rpm and lays them out in OUTDIR like
# the real repositories (docs/internals.md, "Package repositories"):
#   OUTDIR/core/v1.NN/{deb,rpm}/   kubelet, kubeadm, kubectl
#   OUTDIR/cri-o/v1.NN/{deb,rpm}/  cri-o
#   OUTDIR/cri-o/v1.35/rpm/        also container-selinux (rpm only, for EL nodes)
#   OUTDIR/appstream/el8/          kubelab-test-python (rpm only: the el8 node's "AppStream")
# deb/: flat apt repository (Packages(.gz), Release, InRelease, Release.gpg,
# Release.key); rpm/: createrepo_c repository with signed packages,
# repodata/repomd.xml.asc and repodata/repomd.xml.key. Everything is signed
# with a throw-away GPG key made by the first build (kept next to OUTDIR).
#
# Reuse: OUTDIR/.standins-stamp holds a hash of everything under
# molecule/resources/standins/ (this script included); when it matches, the
# build does nothing.
#
# Environment: KUBELAB_PYTHON (default python3) runs pip for vendor.txt and
# prepare hooks; KUBELAB_STANDINS_CACHE (default ~/.cache/kubelab-standins)
# keeps downloads between builds; KUBELAB_STANDINS_FORCE=1 ignores the stamp.
# Package layout: see README.md next to this script.
# The single-quoted "$1" in generated package scripts is meant literally.
# shellcheck disable=SC2016
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prog="standins/build.sh"
PY="${KUBELAB_PYTHON:-python3}"
CACHE="${KUBELAB_STANDINS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubelab-standins}"

say() { printf '%s: [%3ss] %s\n' "$prog" "$SECONDS" "$*"; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
mkdir -p "$1" || die "cannot create output directory $1"
OUT="$(cd "$1" && pwd)"

# ------------------------------------------------------------------ tools
# command -> Debian package that provides it
check_tools() {
  local missing=() pkgs=() pair cmd pkg
  for pair in dpkg-deb:dpkg-dev apt-ftparchive:apt-utils rpmbuild:rpm rpmsign:rpm \
              createrepo_c:createrepo-c gpg:gnupg gpgv:gpgv gzip:gzip sha256sum:coreutils \
              file:file; do
    cmd="${pair%%:*}" pkg="${pair#*:}"
    if ! command -v "$cmd" >/dev/null 2>&1; then
      missing+=("$cmd")
      case " ${pkgs[*]-} " in *" $pkg "*) ;; *) pkgs+=("$pkg") ;; esac
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    die "missing tools: ${missing[*]} (install: apt-get install -y ${pkgs[*]})"
  fi
  command -v "$PY" >/dev/null 2>&1 || die "Python '$PY' not found (set KUBELAB_PYTHON)"
}

# ------------------------------------------------------------------ stamp
compute_stamp() {
  (
    cd "$here"
    find . \( -name build -prune -o -name __pycache__ -prune -o -name '.pytest_cache' -prune \) -o \
      \( -type f ! -name '*.pyc' -print \) | LC_ALL=C sort | while IFS= read -r f; do
      printf '%s %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"
      [ -x "$f" ] && printf 'x %s\n' "$f"
    done
    true
  ) | sha256sum | cut -d' ' -f1
}

# ------------------------------------------------------------------ helpers
std_dirs=" / /etc /usr /usr/bin /usr/sbin /usr/lib /usr/lib64 /usr/libexec /usr/share /usr/share/doc
 /usr/lib/systemd /usr/lib/systemd/system /etc/systemd /etc/systemd/system /var /var/lib /run
 /usr/local /usr/local/bin /opt /etc/default /etc/sysconfig "
is_std_dir() { case "$std_dirs" in *" $1 "*) return 0 ;; esac; return 1; }

# load pkgs/NAME/package.env into PKG_* variables (in a subshell-free way)
load_env() {
  local dir="$1"
  NAME="" VERSION="" RELEASE="" SUMMARY="" DEPENDS_DEB="" DEPENDS_RPM="" WITH_KAPI="" WITH_LIBS="" REPO=""
  # RPM_REPO_DIR: an rpm only, in a dnf repository of its own at OUTDIR/RPM_REPO_DIR
  RPM_REPO_DIR=""
  [ -f "$dir/package.env" ] || die "$dir/package.env is missing"
  # shellcheck disable=SC1091
  . "$dir/package.env"
  [ -n "$NAME" ] || die "$dir/package.env: NAME is empty"
  [[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "$dir/package.env: VERSION '$VERSION' is not X.Y.Z"
  [[ "$RELEASE" =~ ^[0-9]+$ ]] || die "$dir/package.env: RELEASE '$RELEASE' is not a number"
  [ -n "$SUMMARY" ] || die "$dir/package.env: SUMMARY is empty"
  if [ -z "$REPO" ]; then
    if [ "$NAME" = cri-o ]; then REPO=cri-o; else REPO=core; fi
  fi
  MINOR="v${VERSION%.*}"
}

# fill $stage/root for one package
stage_package() {
  local dir="$1" root="$2"
  mkdir -p "$root"
  if [ -d "$dir/root" ]; then
    cp -a "$dir/root/." "$root/"
  fi
  local libdir="$root/usr/lib/kubelab-standins/$NAME"
  if [ -f "$dir/vendor.txt" ] && grep -qvE '^[[:space:]]*(#|$)' "$dir/vendor.txt"; then
    say "$NAME: vendoring Python packages from vendor.txt with $PY"
    mkdir -p "$libdir/site-packages" "$CACHE/wheels"
    local pipopts=(--quiet --disable-pip-version-check)
    local log="$work/pip-$NAME.log"
    # offline from the wheel cache first; fetch into the cache only when needed
    if ! "$PY" -m pip install "${pipopts[@]}" --root-user-action=ignore --no-compile --no-warn-script-location --no-index \
        --find-links "$CACHE/wheels" --target "$libdir/site-packages" -r "$dir/vendor.txt" >"$log" 2>&1; then
      say "$NAME: fetching wheels into $CACHE/wheels"
      rm -rf "$libdir/site-packages"; mkdir -p "$libdir/site-packages"
      if ! { "$PY" -m pip download "${pipopts[@]}" -d "$CACHE/wheels" -r "$dir/vendor.txt" >"$log" 2>&1 &&
             "$PY" -m pip install "${pipopts[@]}" --root-user-action=ignore --no-compile --no-warn-script-location \
               --no-index --find-links "$CACHE/wheels" --target "$libdir/site-packages" -r "$dir/vendor.txt" \
               >"$log" 2>&1; }; then
        cat "$log" >&2
        die "$NAME: pip could not install $dir/vendor.txt"
      fi
    fi
    rm -rf "$libdir/site-packages/bin"
  fi
  if [ "${WITH_KAPI:-}" = 1 ]; then
    [ -d "$here/kapi" ] || die "$NAME: WITH_KAPI=1 but $here/kapi does not exist"
    mkdir -p "$libdir"
    cp -a "$here/kapi" "$libdir/kapi"
    find "$libdir/kapi" \( -name __pycache__ -o -name '*.pyc' \) -prune -exec rm -rf {} +
  fi
  # WITH_LIBS="a b": these directories of this one (test-double libraries
  # such as podrt/ or controllers/) are copied next to kapi.
  local lib
  for lib in ${WITH_LIBS:-}; do
    [ -d "$here/$lib" ] || die "$NAME: WITH_LIBS names $lib but $here/$lib does not exist"
    mkdir -p "$libdir"
    cp -a "$here/$lib" "$libdir/$lib"
  done
  if [ -f "$dir/prepare" ]; then
    say "$NAME: running prepare hook"
    mkdir -p "$CACHE"
    KUBELAB_PYTHON="$PY" KUBELAB_STANDINS_CACHE="$CACHE" sh "$dir/prepare" "$root" \
      || die "$NAME: $dir/prepare failed"
  fi
  find "$root" \( -name __pycache__ -o -name '*.pyc' \) -prune -exec rm -rf {} +
}

# does the staged tree contain native code? then it is arch-specific
has_elf() {
  find "$1" -type f \( -perm -u+x -o -name '*.so' -o -name '*.so.*' \) -print0 |
    xargs -0 -r file -b 2>/dev/null | grep -q '^ELF'
}

# script body without its shebang line
script_body() { sed '1{/^#!/d}' "$1"; }

build_deb() {
  local dir="$1" root="$2" work="$3" arch="$4" debdir="$5"
  local pkgroot="$work/deb-$NAME"
  rm -rf "$pkgroot"; mkdir -p "$pkgroot/DEBIAN"
  cp -a "$root/." "$pkgroot/"
  local size; size=$(du -sk --exclude=DEBIAN "$pkgroot" | cut -f1)
  {
    echo "Package: $NAME"
    echo "Version: $VERSION-$RELEASE.1"
    echo "Architecture: $arch"
    echo "Maintainer: kubelab stand-ins (TEST DOUBLE) <standins@kubelab.invalid>"
    echo "Installed-Size: $size"
    [ -n "$DEPENDS_DEB" ] && echo "Depends: $DEPENDS_DEB"
    echo "Section: admin"
    echo "Priority: optional"
    echo "Description: $SUMMARY"
    echo " TEST DOUBLE built by kubelab for its molecule tests only. It is not the"
    echo " real software and is never installed by kubelab on real machines."
  } >"$pkgroot/DEBIAN/control"
  if [ -d "$pkgroot/etc" ]; then
    (cd "$pkgroot" && find etc -type f | LC_ALL=C sort | sed 's|^|/|') >"$pkgroot/DEBIAN/conffiles"
    [ -s "$pkgroot/DEBIAN/conffiles" ] || rm -f "$pkgroot/DEBIAN/conffiles"
  fi
  if [ -f "$dir/postinst" ]; then
    { echo '#!/bin/sh'; echo 'set -e'; echo '# TEST DOUBLE package script (kubelab stand-in)'
      echo '[ "$1" = configure ] || exit 0'; script_body "$dir/postinst"; } >"$pkgroot/DEBIAN/postinst"
    chmod 755 "$pkgroot/DEBIAN/postinst"
  fi
  if [ -f "$dir/prerm" ]; then
    { echo '#!/bin/sh'; echo 'set -e'; echo '# TEST DOUBLE package script (kubelab stand-in)'
      echo 'case "$1" in remove|deconfigure) ;; *) exit 0 ;; esac'; script_body "$dir/prerm"; } >"$pkgroot/DEBIAN/prerm"
    chmod 755 "$pkgroot/DEBIAN/prerm"
  fi
  mkdir -p "$debdir"
  dpkg-deb --root-owner-group -Zgzip -z6 --build "$pkgroot" "$debdir/${NAME}_$VERSION-$RELEASE.1_$arch.deb" >/dev/null \
    || die "$NAME: dpkg-deb failed"
  rm -rf "$pkgroot"
}

build_rpm() {
  local dir="$1" root="$2" work="$3" arch="$4" rpmdir="$5"
  local top="$work/rpmbuild-$NAME" spec
  rm -rf "$top"; mkdir -p "$top"/{SPECS,RPMS,BUILD,SOURCES,SRPMS,BUILDROOT}
  spec="$top/SPECS/$NAME.spec"
  {
    echo "# TEST DOUBLE package generated by kubelab's standins/build.sh"
    echo "Name: $NAME"
    echo "Version: $VERSION"
    echo "Release: $RELEASE"
    echo "Summary: $SUMMARY"
    echo "License: Apache-2.0"
    echo "URL: https://kubelab.invalid/standins"
    echo "BuildArch: $arch"
    echo "AutoReqProv: no"
    local dep
    for dep in $(echo "$DEPENDS_RPM" | tr ',' ' '); do echo "Requires: $dep"; done
    echo "%define debug_package %{nil}"
    echo "%define __os_install_post %{nil}"
    echo "%define _build_id_links none"
    echo "%description"
    echo "TEST DOUBLE built by kubelab for its molecule tests only. It is not the"
    echo "real software and is never installed by kubelab on real machines."
    echo "%install"
    echo "mkdir -p %{buildroot}"
    echo "cp -a '$root/.' %{buildroot}/"
    if [ -f "$dir/postinst" ]; then
      echo "%post"; echo "("; script_body "$dir/postinst"; echo ")"
    fi
    if [ -f "$dir/prerm" ]; then
      echo "%preun"; echo 'if [ "$1" -eq 0 ]; then ('; script_body "$dir/prerm"; echo '); fi'
    fi
    echo "%files"
    (
      cd "$root"
      find . -mindepth 1 -type d | sed 's|^\.||' | LC_ALL=C sort | while IFS= read -r d; do
        is_std_dir "$d" || echo "%dir \"$d\""
      done
      find . \( -type f -o -type l \) | sed 's|^\.||' | LC_ALL=C sort | while IFS= read -r f; do
        case "$f" in
          /etc/*) echo "%config(noreplace) \"$f\"" ;;
          *) echo "\"$f\"" ;;
        esac
      done
    )
  } >"$spec"
  rpmbuild --quiet -bb \
    --define "_topdir $top" \
    --define "_binary_payload w6.gzdio" \
    --define "_binary_filedigest_algorithm 8" \
    --define "_buildhost kubelab-standins" \
    "$spec" >"$work/rpmbuild-$NAME.log" 2>&1 \
    || { cat "$work/rpmbuild-$NAME.log" >&2; die "$NAME: rpmbuild failed"; }
  mkdir -p "$rpmdir"
  find "$top/RPMS" -name '*.rpm' -exec mv {} "$rpmdir/" \;
  rm -rf "$top"
}

sign_deb_repo() {
  local d="$1"
  (
    cd "$d"
    rm -f Packages Packages.gz Release InRelease Release.gpg Release.key
    apt-ftparchive packages . >Packages 2>/dev/null
    gzip -9nk Packages
    apt-ftparchive \
      -o APT::FTPArchive::Release::Origin="kubelab-standins" \
      -o APT::FTPArchive::Release::Label="kubelab stand-ins (TEST DOUBLES)" \
      -o APT::FTPArchive::Release::Description="kubelab molecule test doubles - never for real machines" \
      release . >Release.tmp
    mv Release.tmp Release
    gpg --batch --yes --quiet --local-user "$KEYID" --clearsign -o InRelease Release
    gpg --batch --yes --quiet --local-user "$KEYID" --armor --detach-sign -o Release.gpg Release
    gpg --batch --quiet --armor --export "$KEYID" >Release.key
  )
}

sign_rpm_repo() {
  local d="$1"
  rpmsign --define "_gpg_name $KEYID" --define "__gpg /usr/bin/gpg" --define "_gpg_path $GNUPGHOME" \
    --addsign "$d"/*.rpm >/dev/null 2>"$work/rpmsign.log" \
    || { cat "$work/rpmsign.log" >&2; die "rpmsign failed in $d"; }
  createrepo_c --quiet --general-compress-type=gz "$d" >/dev/null || die "createrepo_c failed in $d"
  gpg --batch --yes --quiet --local-user "$KEYID" --armor --detach-sign -o "$d/repodata/repomd.xml.asc" \
    "$d/repodata/repomd.xml"
  gpg --batch --quiet --armor --export "$KEYID" >"$d/repodata/repomd.xml.key"
}

# ------------------------------------------------------------------ main
check_tools
stamp="$(compute_stamp)"
if [ "${KUBELAB_STANDINS_FORCE:-0}" != 1 ] && [ -f "$OUT/.standins-stamp" ] &&
   [ "$(cat "$OUT/.standins-stamp")" = "$stamp" ]; then
  say "up to date: $OUT matches stamp ${stamp:0:12}, nothing to do"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/kubelab-standins.XXXXXX")"
export GNUPGHOME="$work/gnupg"
cleanup() {
  gpgconf --kill all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -m 700 "$GNUPGHOME"

say "building stand-in repositories into $OUT (stamp ${stamp:0:12})"
# The throw-away key outlives a rebuild (kept beside the repositories in
# .OUTDIR-signing-key.asc next to OUTDIR, not inside it: OUTDIR is mounted
# into the test nodes), as a real repository keeps its key: nodes that trust
# it stay unchanged when the packages are rebuilt.
keyfile="$(dirname "$OUT")/.$(basename "$OUT")-signing-key.asc"
if [ -s "$keyfile" ] && gpg --batch --quiet --import "$keyfile" 2>/dev/null; then
  say "reusing the throw-away signing key from $keyfile"
else
  say "generating a throw-away signing key in a temporary GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key \
    "kubelab stand-in repositories (TEST ONLY) <standins@kubelab.invalid>" rsa3072 sign 1y 2>/dev/null \
    || die "gpg could not generate the throw-away key"
  (umask 077 && gpg --batch --quiet --armor --export-secret-keys >"$keyfile")
fi
KEYID="$(gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '/^fpr:/ {print $10; exit}')"
[ -n "$KEYID" ] || die "no key fingerprint after key generation"

new="$work/out"
host_rpm_arch="$(uname -m)"
host_deb_arch="$(dpkg --print-architecture)"
count=0
rpm_only_dirs=()
for dir in "$here"/pkgs/*/; do
  dir="${dir%/}"
  [ -f "$dir/package.env" ] || { say "skipping $(basename "$dir"): no package.env"; continue; }
  load_env "$dir"
  stage="$work/stage-$NAME"
  stage_package "$dir" "$stage"
  if has_elf "$stage"; then deb_arch="$host_deb_arch" rpm_arch="$host_rpm_arch"; else deb_arch=all rpm_arch=noarch; fi
  if [ -n "$RPM_REPO_DIR" ]; then
    say "$NAME $VERSION: building .rpm ($rpm_arch) for $RPM_REPO_DIR"
    build_rpm "$dir" "$stage" "$work" "$rpm_arch" "$new/$RPM_REPO_DIR"
    # a */*/rpm directory (container-selinux: cri-o/v1.35/rpm) is signed with the other repositories below
    case "$RPM_REPO_DIR" in */*/rpm) ;; *) rpm_only_dirs+=("$new/$RPM_REPO_DIR") ;; esac
  else
    say "$NAME $VERSION: building .deb ($deb_arch) and .rpm ($rpm_arch) for $REPO/$MINOR"
    build_deb "$dir" "$stage" "$work" "$deb_arch" "$new/$REPO/$MINOR/deb"
    build_rpm "$dir" "$stage" "$work" "$rpm_arch" "$new/$REPO/$MINOR/rpm"
  fi
  rm -rf "$stage"
  count=$((count + 1))
done
[ "$count" -gt 0 ] || die "no packages found under $here/pkgs"

for d in "$new"/*/*/deb; do
  say "signing apt repository ${d#"$new"/}"
  sign_deb_repo "$d"
done
for d in "$new"/*/*/rpm; do
  say "signing packages and creating dnf repository ${d#"$new"/}"
  sign_rpm_repo "$d"
done
for d in ${rpm_only_dirs[@]+"${rpm_only_dirs[@]}"}; do
  say "signing packages and creating dnf repository ${d#"$new"/}"
  sign_rpm_repo "$d"
done

# replace the repositories in OUTDIR (OUTDIR itself may be bind-mounted)
for repo in "$new"/*; do
  name="$(basename "$repo")"
  rm -rf "$OUT/$name.old"
  [ -e "$OUT/$name" ] && mv "$OUT/$name" "$OUT/$name.old"
  mv "$repo" "$OUT/$name"
  rm -rf "$OUT/$name.old"
done
echo "$stamp" >"$OUT/.standins-stamp"
say "done: $count packages, repositories in $OUT ($(cd "$OUT" && find . -name '*.deb' -o -name '*.rpm' | wc -l) package files)"
