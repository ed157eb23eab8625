#!/usr/bin/env bash
# Makes berth's test images from Debian's busybox-static (no registry needed).
#
#   scripts/fixtures.sh [OUTDIR]        (default: target/fixtures)
#
# Writes into OUTDIR:
#   busybox-rootfs.tar  a busybox root filesystem: `berth import` it as busybox
#   big-image.tar       a docker-archive (as `docker save` writes it) of a
#                       3-layer image "berth-fixture/big:latest": the busybox
#                       rootfs, a layer with BIG_MB MiB of random data in
#                       /data/blob, and a layer that deletes /etc/motd
#                       (a whiteout) and adds /data/small
# BIG_MB defaults to 64 (tests); the benchmark asks for 500.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../target/fixtures}
big_mb=${BIG_MB:-64}
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
  echo "fixtures: busybox-static is needed (apt-get install busybox-static)" >&2
  exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "fixtures: $busybox is dynamically linked; install busybox-static" >&2
  exit 1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp="busybox=$(sha256sum "$busybox" | cut -c1-16) big_mb=$big_mb v1"
if [ -z "${FORCE:-}" ] && [ -f "$out/big-image.tar" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
rm -f "$out/.stamp"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

root=$work/rootfs
mkdir -p "$root"/{bin,dev,etc,home,proc,root,sys,tmp,usr/bin,usr/sbin,var/spool/mail,var/www}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -f "$root/bin/busybox" "$root/bin/$applet"
done
cat > "$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PW
cat > "$root/etc/group" <<'GR'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
GR
echo "welcome to a berth fixture" > "$root/etc/motd"
# Fixed owners and mtimes: the same tar (and image ID) every time.
find "$root" -exec touch -h -d @1700000000 {} +
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@1700000000 \
  -C "$root" -cf "$out/busybox-rootfs.tar" .

# The big image, as a docker-archive.
mkdir -p "$work/l2/data" "$work/l3/data" "$work/l3/etc"
head -c "$((big_mb * 1024 * 1024))" /dev/urandom > "$work/l2/data/blob"
echo small > "$work/l3/data/small"
: > "$work/l3/etc/.wh.motd"
for l in l2 l3; do
  find "$work/$l" -exec touch -h -d @1700000000 {} +
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@1700000000 -C "$work/$l" -cf "$work/$l.tar" .
done
python3 - "$out/busybox-rootfs.tar" "$work/l2.tar" "$work/l3.tar" "$out/big-image.tar" <<'PY'
import hashlib, io, json, sys, tarfile
layers, dest = sys.argv[1:4], sys.argv[4]
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
diffs = [sha(p) for p in layers]
steps = ["ADD rootfs /", "ADD blob /data/blob", "RUN rm /etc/motd && echo small > /data/small"]
config = {
    "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"],
               "Labels": {"org.berth.fixture": "big"}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diffs]},
    "history": [{"created": "2023-11-14T22:13:20Z", "created_by": s} for s in steps],
}
cfg = json.dumps(config, separators=(",", ":")).encode()
cfg_hex = hashlib.sha256(cfg).hexdigest()
def add_bytes(t, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 1700000000
    t.addfile(ti, io.BytesIO(data))
with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as t:
    add_bytes(t, cfg_hex + ".json", cfg)
    names = []
    for d, p in zip(diffs, layers):
        ti = t.gettarinfo(p, arcname=d + "/layer.tar"); ti.mtime = 1700000000; ti.uid = ti.gid = 0; ti.uname = ti.gname = ""
        with open(p, "rb") as f:
            t.addfile(ti, f)
        add_bytes(t, d + "/VERSION", b"1.0")
        names.append(d + "/layer.tar")
    manifest = [{"Config": cfg_hex + ".json", "RepoTags": ["berth-fixture/big:latest"], "Layers": names}]
    add_bytes(t, "manifest.json", json.dumps(manifest).encode())
    add_bytes(t, "repositories", json.dumps({"berth-fixture/big": {"latest": diffs[-1]}}).encode())
PY
echo "$stamp" > "$out/.stamp"
echo "fixtures: wrote $out/busybox-rootfs.tar and $out/big-image.tar (${big_mb} MiB layer)"
