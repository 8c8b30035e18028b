#!/bin/bash
# Build the Debian package for recorder boxes:  scripts/build-deb.sh OUTDIR   (`make deb`)
#
# The package carries a complete venv in /opt/vmsd/venv, built here with Debian's own Python
# (/usr/bin/python3.11, the interpreter the venv will run on) and every dependency from the package
# index. Installing it therefore needs no network and no compiler: a recorder box on an isolated
# camera LAN installs it with `apt-get install ./vmsd_*.deb`. The venv is built in a staging root and
# relocated: every text file that names the staging path (script shebangs, activate, pyvenv.cfg) is
# rewritten, and the bytecode is compiled here with the final path (the service cannot write .pyc
# files: ProtectSystem=strict).
set -euo pipefail
out=${1:?usage: build-deb.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3.11  # Debian 12's python3; the package depends on exactly this interpreter
prefix=/opt/vmsd
venv=$prefix/venv
# Nothing from the caller's Python may leak in: with a checkout's src on PYTHONPATH (as under the
# test suite) pip would find vmsd "already installed" and leave it out of the venv.
unset PYTHONPATH PYTHONHOME PYTHONUSERBASE PYTHONSTARTUP VIRTUAL_ENV

if [ ! -x "$python" ]; then
	echo "build-deb: $python is missing: the package is built for Debian 12 (apt-get install python3.11-venv)" >&2
	exit 1
fi
for tool in dpkg-deb dpkg; do
	command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (apt-get install dpkg)" >&2; exit 1; }
done
version=$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
	"$root/pyproject.toml")
arch=$(dpkg --print-architecture)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/root
mkdir -p "$stage/DEBIAN" "$out"

echo "build-deb: venv in $venv (staged in $stage)"
"$python" -m venv "$stage$venv"
"$root/scripts/build-wheel.sh" "$stage$venv/bin/python" "$work/wheel" >/dev/null
# constraints.txt: the package gets the dependency versions CI tested, not whatever is newest today.
"$stage$venv/bin/python" -m pip install -q --no-compile --disable-pip-version-check --no-warn-script-location \
	-c "$root/constraints.txt" "$work"/wheel/vmsd-*.whl
for tool in vmsd vmsctl; do
	"$stage$venv/bin/$tool" --help >/dev/null || { echo "build-deb: $tool does not run in the staged venv" >&2; exit 1; }
done

# Relocate: nothing in the venv may name the staging root.
grep -rlIF -- "$stage" "$stage$venv" | while read -r file; do sed -i "s|$stage||g" "$file"; done
if grep -rlIF -- "$stage" "$stage$venv"; then
	echo "build-deb: files above still name the staging path" >&2
	exit 1
fi
find "$stage$venv" -name __pycache__ -prune -exec rm -rf {} +
"$python" -m compileall -q -j0 -d "$venv/lib" "$stage$venv/lib" >/dev/null

# The hardened unit, pointed at the package's venv and docs.
install -D -m 0644 "$root/systemd/vmsd.service" "$stage/lib/systemd/system/vmsd.service"
sed -i -e "s|^ExecStart=/opt/vmsd/.venv/bin/vmsd |ExecStart=$venv/bin/vmsd |" \
	-e "s|^Documentation=.*|Documentation=file:///usr/share/doc/vmsd/install.md file:///usr/share/doc/vmsd/operator-guide.md|" \
	-e "s|^#   install -m 0644 systemd/vmsd.service .*|#   (installed by the vmsd package; do not edit: use \`systemctl edit vmsd\`)|" \
	"$stage/lib/systemd/system/vmsd.service"
grep -q "^ExecStart=$venv/bin/vmsd run " "$stage/lib/systemd/system/vmsd.service" || {
	echo "build-deb: systemd/vmsd.service has an ExecStart this script does not know how to repoint" >&2
	exit 1
}

# The configuration (a conffile: upgrades keep local changes). Its group and mode (root:vmsd 0640)
# are a dpkg-statoverride made by postinst, so every later unpack keeps them.
install -D -m 0640 "$root/config/vmsd.example.toml" "$stage/etc/vmsd/vmsd.toml"
chmod 0750 "$stage/etc/vmsd"
echo /etc/vmsd/vmsd.toml >"$stage/DEBIAN/conffiles"

# Commands on PATH (make install's links live in /usr/local/bin, which comes first on PATH).
mkdir -p "$stage/usr/bin"
ln -s "$venv/bin/vmsd" "$stage/usr/bin/vmsd"
ln -s "$venv/bin/vmsctl" "$stage/usr/bin/vmsctl"

doc=$stage/usr/share/doc/vmsd
install -d "$doc"
install -m 0644 "$root/README.md" "$root/docs/"*.md "$root/config/vmsd.example.toml" "$doc/"
printf 'vmsd is licensed under the Apache License, Version 2.0.\nOn Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.\n' \
	>"$doc/copyright"

for script in postinst prerm postrm; do
	install -m 0755 "$root/packaging/debian/$script" "$stage/DEBIAN/$script"
done
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@INSTALLED_SIZE@|$installed_kb|" \
	"$root/packaging/debian/control.in" >"$stage/DEBIAN/control"

deb=$out/vmsd_${version}_${arch}.deb
# VMSD_DEB_COMPRESSION=gzip: a faster build of the same contents (the package test uses it).
dpkg-deb --root-owner-group -Z"${VMSD_DEB_COMPRESSION:-xz}" --build "$stage" "$deb" >/dev/null
echo "$deb"
