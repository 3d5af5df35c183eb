#!/usr/bin/env bash
# Builds the OpenZFS lab's guest image: Debian 12 (bookworm) with Debian's 6.1 kernel, OpenZFS built by DKMS for it,
# systemd, OpenSSH and what hozo and hozo-agent need at run time (node itself and the built project come in at boot
# over a read-only 9p share, so the image does not depend on the host's node or on the checkout).
#
#   bash scripts/lab-image.sh [2.3|2.1]       build (or reuse) the image for that OpenZFS series; prints its directory
#   bash scripts/lab-image.sh --check 2.3     exit 0 if a complete image for 2.3 is cached, 1 otherwise
#
# Cache: /var/cache/hozo-lab/ (HOZO_LAB_CACHE), one directory per ZFS series and builder hash:
#   openzfs-2.3-<hash>/{root.img,vmlinuz,initrd.img,id_ed25519,id_ed25519.pub,manifest}
#   debs/        downloaded .debs (debootstrap's and apt's), reused by rebuilds
# <hash> is the sha256 of this script, so a changed builder builds a new image. `manifest` is written last, with the
# sizes and sha256 of the kernel and initrd and the size of root.img: a half-built or corrupt directory (no manifest,
# a size or digest that differs, root.img failing `e2fsck -n`) is removed and built again.
#
# Packages come from the Debian mirror the host's own apt uses; the ZFS series selects the suite inside the image
# (2.3: bookworm-backports contrib, 2.1: bookworm contrib). Nothing is added to the host's apt sources.
set -euo pipefail
exec </dev/null

CHECK_ONLY=0
if [ "${1:-}" = "--check" ]; then CHECK_ONLY=1; shift; fi
SERIES=${1:-2.3}
case $SERIES in
  2.3) ZFS_SUITE=bookworm-backports ;;
  2.1) ZFS_SUITE=bookworm ;;
  *) echo "lab-image: unknown OpenZFS series '$SERIES' (expected 2.3 or 2.1)" >&2; exit 2 ;;
esac

CACHE=${HOZO_LAB_CACHE:-/var/cache/hozo-lab}
HASH=$(sha256sum "$0" | cut -c1-12)
OUT=$CACHE/openzfs-$SERIES-$HASH
DEBS=$CACHE/debs
T0=$SECONDS
say() { echo "[lab-image $SERIES +$((SECONDS - T0))s] $*" >&2; }

# A cached image is complete when its manifest exists and every recorded size and digest still matches.
image_ok() {
  local m=$OUT/manifest f want got
  [ -f "$m" ] || return 1
  for f in vmlinuz initrd.img; do
    want=$(sed -n "s/^sha256 $f //p" "$m")
    [ -n "$want" ] && [ -f "$OUT/$f" ] || return 1
    got=$(sha256sum "$OUT/$f" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { say "$f digest differs from the manifest"; return 1; }
  done
  want=$(sed -n 's/^size root.img //p' "$m")
  [ -f "$OUT/root.img" ] && [ "$(stat -c %s "$OUT/root.img")" = "$want" ] || { say "root.img missing or resized"; return 1; }
  [ -f "$OUT/id_ed25519" ] && [ -f "$OUT/id_ed25519.pub" ] || return 1
  if [ "${HOZO_LAB_FSCK:-1}" = 1 ] && command -v e2fsck >/dev/null; then
    e2fsck -n -f "$OUT/root.img" >/dev/null 2>&1 || { say "root.img fails e2fsck"; return 1; }
  fi
  return 0
}

if image_ok; then
  say "cached image is complete: $OUT"
  echo "$OUT"
  exit 0
fi
[ "$CHECK_ONLY" = 1 ] && exit 1
[ "$(id -u)" = 0 ] || { echo "lab-image: building needs root (debootstrap, chroot, mounts)" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  say "apt-get install ${need[*]} (host)"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The mirror the host uses (deb822 sources or a classic sources.list).
host_mirror() {
  local pat=$1
  { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" {print $2}'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" {print $2}'; } \
    | grep -E "$pat" | head -1 || true
}
MIRROR=${HOZO_LAB_MIRROR:-$(host_mirror '/debian/?$')}
SECMIRROR=${HOZO_LAB_SECURITY_MIRROR:-$(host_mirror 'debian-security/?$')}
[ -n "$MIRROR" ] || { echo "lab-image: no Debian mirror in the host's apt sources; set HOZO_LAB_MIRROR" >&2; exit 1; }
[ -n "$SECMIRROR" ] || SECMIRROR=${MIRROR%/debian*}/debian-security

# Only one build per output directory at a time.
mkdir -p "$CACHE" "$DEBS/debootstrap" "$DEBS/apt"
exec 9>"$CACHE/.build-$SERIES.lock"
flock 9
if image_ok; then echo "$OUT"; exit 0; fi   # another build finished while we waited

WORK=$CACHE/.work-$SERIES-$HASH
R=$WORK/root
umount_all() {
  local m
  for m in var/cache/apt/archives dev/pts dev sys proc; do
    mountpoint -q "$R/$m" 2>/dev/null && umount -l "$R/$m"
  done
  return 0
}
trap umount_all EXIT
umount_all
rm -rf "$WORK" "$OUT"
mkdir -p "$WORK" "$OUT"

say "debootstrap bookworm ($MIRROR)"
debootstrap --variant=minbase --cache-dir="$DEBS/debootstrap" \
  --include=systemd-sysv,udev,kmod,dbus,openssh-server,openssh-client,iproute2,procps,sudo,pv,mbuffer,zstd,lz4,libstdc++6,ca-certificates,netcat-openbsd,tmux,e2fsprogs \
  bookworm "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }

mount -t proc proc "$R/proc"
mount -t sysfs sys "$R/sys"
mount --bind /dev "$R/dev"
mount -t devpts devpts "$R/dev/pts"
mount --bind "$DEBS/apt" "$R/var/cache/apt/archives"
cat >"$R/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main contrib
deb $MIRROR bookworm-updates main contrib
deb $SECMIRROR bookworm-security main contrib
deb $MIRROR bookworm-backports main contrib
EOF
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod +x "$R/usr/sbin/policy-rc.d"
chroot "$R" apt-get update -qq >/dev/null

say "kernel and headers"
chroot "$R" apt-get install -y -qq --no-install-recommends linux-image-amd64 linux-headers-amd64 initramfs-tools \
  >"$WORK/apt-kernel.log" 2>&1 || { tail -30 "$WORK/apt-kernel.log" >&2; exit 1; }
KVER=$(basename "$(ls -d "$R"/lib/modules/*-amd64 | sort -V | tail -1)")

say "zfs-dkms + zfsutils-linux from $ZFS_SUITE (DKMS builds the module for $KVER)"
chroot "$R" apt-get install -y -qq --no-install-recommends -t "$ZFS_SUITE" zfs-dkms zfsutils-linux \
  >"$WORK/apt-zfs.log" 2>&1 || { tail -30 "$WORK/apt-zfs.log" >&2; exit 1; }
if ! ls "$R/lib/modules/$KVER/updates/dkms/zfs.ko"* >/dev/null 2>&1; then
  say "zfs.ko missing for $KVER: dkms autoinstall"
  chroot "$R" dkms autoinstall -k "$KVER" >>"$WORK/apt-zfs.log" 2>&1
fi
ls "$R/lib/modules/$KVER/updates/dkms/zfs.ko"* >/dev/null
ZVER=$(chroot "$R" dpkg-query -W -f='${Version}' zfsutils-linux)
case $ZVER in "$SERIES".*) ;; *) echo "lab-image: got zfsutils-linux $ZVER, expected $SERIES.x" >&2; exit 1 ;; esac

# syncoid for the benchmark on the VMs; faketime for the box's clock in retention tests.
say "sanoid, faketime"
chroot "$R" apt-get install -y -qq --no-install-recommends sanoid faketime >"$WORK/apt-extra.log" 2>&1 \
  || { tail -30 "$WORK/apt-extra.log" >&2; exit 1; }

# A small initramfs: only what a virtio guest needs for its ext4 root.
sed -i 's/^MODULES=.*/MODULES=list/' "$R/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk virtio_net ext4 crc32c_generic >>"$R/etc/initramfs-tools/modules"
chroot "$R" update-initramfs -u -k "$KVER" >/dev/null 2>&1

say "guest configuration"
echo hozo-lab >"$R/etc/hostname"
printf '127.0.0.1 localhost\n' >"$R/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$R/etc/fstab"
# The project (built on the host, read-only) and the host's node binary, shared by the lab at boot.
printf 'hozo /opt/hozo 9p trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose,nofail,x-systemd.device-timeout=10s 0 0\n' >>"$R/etc/fstab"
mkdir -p "$R/opt/hozo"
: >"$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
ssh-keygen -q -t ed25519 -N '' -C hozo-lab-root -f "$OUT/id_ed25519"
install -d -m700 "$R/root/.ssh"
install -m600 "$OUT/id_ed25519.pub" "$R/root/.ssh/authorized_keys"
printf 'UseDNS no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\nMaxSessions 64\nMaxStartups 64:30:128\nAcceptEnv HOZO_*\n' \
  >"$R/etc/ssh/sshd_config.d/hozo-lab.conf"
# Unprivileged users: the controller's (runs hozo with delegated zfs permissions) and the box's (hozo-agent).
chroot "$R" useradd --create-home --shell /bin/sh hozo
# The lab's network: the NIC whose MAC ends in the last octet of hozo.ip= on the kernel command line gets that address.
cat >"$R/usr/local/sbin/hozo-lab-net" <<'EOF'
#!/bin/sh
for a in $(cat /proc/cmdline); do case $a in hozo.ip=*) ip=${a#hozo.ip=};; hozo.mac=*) mac=${a#hozo.mac=};; esac; done
[ -n "$ip" ] && [ -n "$mac" ] || exit 0
mkdir -p /run/systemd/network
printf '[Match]\nMACAddress=%s\n[Network]\nAddress=%s\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' "$mac" "$ip" \
  >/run/systemd/network/10-hozo-lab.network
EOF
chmod 755 "$R/usr/local/sbin/hozo-lab-net"
cat >"$R/etc/systemd/system/hozo-lab-net.service" <<'EOF'
[Unit]
Description=hozo lab: static address from the kernel command line
DefaultDependencies=no
Before=systemd-networkd.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/hozo-lab-net
[Install]
WantedBy=systemd-networkd.service
EOF
chroot "$R" systemctl enable systemd-networkd hozo-lab-net ssh >/dev/null 2>&1
chroot "$R" systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
  dpkg-db-backup.timer e2scrub_all.timer fstrim.timer e2scrub_reap.service man-db.timer \
  zfs-scrub-monthly@.timer zfs-trim-monthly@.timer sanoid.timer >/dev/null 2>&1 || true
# Debian's ZFS units (zfs-load-module, zfs-import-cache, zfs-mount, zfs.target) stay as shipped: pools in
# /etc/zfs/zpool.cache are imported at boot, as on a user's Debian box.
rm -f "$R/usr/sbin/policy-rc.d" "$R"/var/cache/apt/*.bin
rm -rf "$R/var/lib/apt/lists/"*

umount_all
say "mkfs.ext4 -d (4G sparse)"
mkfs.ext4 -q -F -L hozo-lab -d "$R" "$WORK/root.img" 4G
cp "$R/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
cp "$R/boot/initrd.img-$KVER" "$OUT/initrd.img"
mv "$WORK/root.img" "$OUT/root.img"
{
  echo "series $SERIES"
  echo "builder $HASH"
  echo "built $(date -u +%FT%TZ)"
  echo "kernel $KVER"
  echo "zfs $ZVER"
  echo "sha256 vmlinuz $(sha256sum "$OUT/vmlinuz" | cut -d' ' -f1)"
  echo "sha256 initrd.img $(sha256sum "$OUT/initrd.img" | cut -d' ' -f1)"
  echo "size root.img $(stat -c %s "$OUT/root.img")"
} >"$OUT/manifest.tmp"
mv "$OUT/manifest.tmp" "$OUT/manifest"
rm -rf "$WORK"
# Older builds of the same series (another builder hash) are no longer used.
for d in "$CACHE"/openzfs-"$SERIES"-*; do [ "$d" = "$OUT" ] || rm -rf "$d"; done
say "done: zfs $ZVER, kernel $KVER, $(du -sh "$OUT" | cut -f1) on disk"
echo "$OUT"
