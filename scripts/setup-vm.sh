#!/usr/bin/env bash
# Installs and configures what ov's VM boots need on a Debian 12 machine
# with no init system, as root. Idempotent: a second run changes nothing.
# scripts/setup.sh calls it; it can also run on its own.
#
# Steps:
#   1. packages  qemu-system-x86, qemu-utils, ovmf, libvirt (daemon, qemu
#                driver, clients, dev headers for the `virt` crate),
#                pkg-config, xorriso, openssh-client, openssh-server (the
#                boot tests run the ssh client against a private sshd on
#                127.0.0.1; the package starts nothing), and what the test
#                guest is made with (busybox-static, cpio, mtools,
#                dosfstools, systemd-boot-efi, binutils, fdisk, syslinux).
#   2. users     groups kvm and libvirt-qemu, user libvirt-qemu: libvirt's
#                QEMU driver resolves its built-in user before it reads
#                qemu.conf and exits when the user does not exist.
#   3. config    /etc/libvirt/qemu.conf: run guests as root with no
#                cgroups, namespaces or security driver (none work on this
#                kind of host) and console output to files (no virtlogd).
#   4. daemon    `libvirtd -d` (the monolithic daemon; there is no systemd
#                to socket-activate the modular ones), restarted when the
#                config changed. Socket: /run/libvirt/libvirt-sock.
#   5. guest     (skip with OV_SETUP_GUEST=0) a test guest for ov's boot
#                tests, built once under $STATE/guest: Debian's kernel, a
#                busybox initramfs whose init prints a console marker, and
#                disks (MBR, one FAT partition written with mtools, never
#                mounted) that boot it under BIOS (syslinux) and UEFI (a
#                unified kernel image as EFI/BOOT/BOOTX64.EFI):
#                  ready.img   prints OV-GUEST-READY, powers off on the
#                              ACPI power button
#                  silent.img  prints nothing and never powers off
#
# Environment:
#   OV_SETUP_GUEST=0        skip step 5
#   OV_SETUP_STATE_DIR=DIR  where the guest lives (default /var/lib/ov-setup)
set -euo pipefail

STATE_DIR=${OV_SETUP_STATE_DIR:-/var/lib/ov-setup}
GUEST_DIR=$STATE_DIR/guest
WITH_GUEST=${OV_SETUP_GUEST:-1}
QEMU_CONF=/etc/libvirt/qemu.conf
LIBVIRT_PID=/run/libvirtd.pid
LIBVIRT_SOCK=/run/libvirt/libvirt-sock
CONF_STAMP=/run/libvirtd.conf-sha256
# Bump when the guest recipe below changes, so hosts rebuild it.
GUEST_VERSION=4

PACKAGES=(
  qemu-system-x86 qemu-utils ovmf
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config
  xorriso openssh-client openssh-server
  busybox-static cpio mtools dosfstools systemd-boot-efi binutils fdisk syslinux syslinux-common
)

log() { printf 'setup-vm: %s\n' "$*"; }
die() { printf 'setup-vm: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run this script as root"

# --- 1. packages ------------------------------------------------------------

POLICY_RC=/usr/sbin/policy-rc.d
policy_rc_added=0
tmp=""
cleanup() {
  if ((policy_rc_added)); then rm -f "$POLICY_RC"; fi
  if [[ -n $tmp ]]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT

missing=()
for p in "${PACKAGES[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == 'install ok installed' ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -e $POLICY_RC ]]; then
    printf '#!/bin/sh\n# Added by ov scripts/setup-vm.sh for the length of an install.\nexit 101\n' >"$POLICY_RC"
    chmod 0755 "$POLICY_RC"
    policy_rc_added=1
  fi
  log "installing ${missing[*]}"
  # Other set-up scripts may hold dpkg's lock: wait for it rather than fail.
  apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null; }
  if ! apt_install "${missing[@]}"; then
    log "install failed; apt-get update and retry"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt_install "${missing[@]}"
  fi
  log "packages: installed ${#missing[@]}"
else
  log "packages: unchanged"
fi

# --- 2. users ---------------------------------------------------------------

for g in kvm libvirt-qemu; do
  getent group "$g" >/dev/null || groupadd --system "$g"
done
if ! getent passwd libvirt-qemu >/dev/null; then
  useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
    --gid libvirt-qemu --groups kvm libvirt-qemu
fi
log "users: kvm, libvirt-qemu present"

# --- 3. qemu.conf -----------------------------------------------------------

MARK='# Managed by ov scripts/setup-vm.sh'
read -r -d '' WANT_CONF <<EOF || true
$MARK; edits are overwritten.
# Guests run as root with no cgroups, namespaces or security driver: none
# of them work without systemd on this kind of host. Console and log
# output go to files, so no virtlogd is needed.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
mkdir -p /etc/libvirt
if [[ -f $QEMU_CONF ]] && [[ $(cat "$QEMU_CONF") == "$WANT_CONF" ]]; then
  log "config: unchanged $QEMU_CONF"
else
  if [[ -f $QEMU_CONF && ! -e $QEMU_CONF.orig ]] && ! grep -qF "$MARK" "$QEMU_CONF"; then
    cp -p "$QEMU_CONF" "$QEMU_CONF.orig"
  fi
  printf '%s\n' "$WANT_CONF" >"$QEMU_CONF.tmp"
  mv -f "$QEMU_CONF.tmp" "$QEMU_CONF"
  log "config: wrote $QEMU_CONF"
fi
conf_sha=$(sha256sum "$QEMU_CONF" | cut -d' ' -f1)

# --- 4. libvirtd ------------------------------------------------------------

# shellcheck source=scripts/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
alive() { pid_is "$1" libvirtd; }
pid=$(cat "$LIBVIRT_PID" 2>/dev/null || true)
if alive "$pid" && [[ $(cat "$CONF_STAMP" 2>/dev/null) == "$conf_sha" ]]; then
  log "daemon: libvirtd already running (pid $pid)"
else
  if alive "$pid"; then
    log "daemon: qemu.conf changed, restarting libvirtd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid"
  fi
  rm -f "$LIBVIRT_PID"
  mkdir -p /var/log/libvirt
  # From /, so no daemon holds on to the checkout it was started in.
  (cd / && exec libvirtd -d)
  echo "$conf_sha" >"$CONF_STAMP"
  for ((i = 0; i < 300; i++)); do [[ -S $LIBVIRT_SOCK ]] && break; sleep 0.1; done
  [[ -S $LIBVIRT_SOCK ]] || die "libvirtd did not create $LIBVIRT_SOCK"
  # The first connection probes QEMU's capabilities (about 8 s); do it
  # here rather than in the first build.
  virsh -c qemu:///system version >/dev/null || die "libvirtd does not answer on $LIBVIRT_SOCK"
  log "daemon: libvirtd started (pid $(cat "$LIBVIRT_PID"))"
fi

# --- 5. test guest ----------------------------------------------------------

if [[ $WITH_GUEST == 0 ]]; then
  exit 0
fi
if [[ $(cat "$GUEST_DIR/version" 2>/dev/null) == "$GUEST_VERSION" ]]; then
  log "guest: unchanged $GUEST_DIR"
  exit 0
fi
tmp=$(mktemp -d)
mkdir -p "$GUEST_DIR"

# The kernel: the current Debian 12 image package, unpacked without
# installing it (nothing on the host boots from it).
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[[ -n $kpkg ]] || die "no linux-image package behind linux-image-amd64"
(cd "$tmp" && apt-get download -qq "$kpkg" >/dev/null) || die "apt-get download $kpkg failed"
# The ACPI power button and evdev are modules in Debian's kernel: the
# ready guest loads them to hear the button.
dpkg-deb --fsys-tarfile "$tmp"/"$kpkg"_*.deb | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' \
  './lib/modules/*/kernel/drivers/acpi/button.ko*' './lib/modules/*/kernel/drivers/input/evdev.ko*'
cp "$tmp"/boot/vmlinuz-* "$GUEST_DIR/vmlinuz"
for m in "$tmp"/lib/modules/*/kernel/drivers/acpi/button.ko* "$tmp"/lib/modules/*/kernel/drivers/input/evdev.ko*; do
  case $m in *.xz) xz -dc "$m" >"$tmp/$(basename "${m%.xz}")" ;; *) cp "$m" "$tmp/" ;; esac
done

# init_for MODE: ready prints the marker and powers off on the ACPI power
# button (any event on the button's input device); silent hangs.
init_for() {
  cat <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
EOF
  if [[ $1 == ready ]]; then
    cat <<'EOF'
insmod /lib/evdev.ko
insmod /lib/button.ko
for d in /sys/class/input/event*; do
  if grep -q 'Power Button' "$d/device/name" 2>/dev/null; then
    (head -c 1 "/dev/input/${d##*/}" >/dev/null; poweroff -f) &
  fi
done
# Give the listeners time to open the button before saying ready.
sleep 1
echo OV-GUEST-READY >/dev/ttyS0
EOF
  fi
  echo 'while :; do sleep 3600; done'
}

make_disk() {
  local mode=$1 root=$tmp/root-$1 img=$GUEST_DIR/$1.img part=$tmp/part-$1.img
  mkdir -p "$root"/{bin,proc,sys,dev,lib}
  cp /bin/busybox "$root/bin/busybox"
  cp "$tmp/button.ko" "$tmp/evdev.ko" "$root/lib/"
  init_for "$mode" >"$root/init"
  chmod 0755 "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$tmp/initrd-$mode.gz"
  echo "console=ttyS0 quiet panic=-1" >"$tmp/cmdline"
  # A unified kernel image: systemd-boot's stub with the kernel, initrd and
  # command line as sections, so UEFI boots it as the fallback loader.
  objcopy \
    --add-section .cmdline="$tmp/cmdline" --change-section-vma .cmdline=0x30000 \
    --add-section .linux="$GUEST_DIR/vmlinuz" --change-section-vma .linux=0x2000000 \
    --add-section .initrd="$tmp/initrd-$mode.gz" --change-section-vma .initrd=0x3000000 \
    /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$tmp/uki-$mode.efi"
  # The FAT partition, written without mounting (the host kernel has no vfat).
  rm -f "$part"
  truncate -s 48M "$part"
  mkfs.fat -F 16 -n OVGUEST "$part" >/dev/null
  export MTOOLS_SKIP_CHECK=1
  mmd -i "$part" ::/EFI ::/EFI/BOOT ::/syslinux
  mcopy -i "$part" "$tmp/uki-$mode.efi" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$part" "$GUEST_DIR/vmlinuz" ::/vmlinuz
  mcopy -i "$part" "$tmp/initrd-$mode.gz" ::/initrd.gz
  printf 'DEFAULT ov\nPROMPT 0\nTIMEOUT 0\nSERIAL 0 115200\nLABEL ov\n  KERNEL /vmlinuz\n  INITRD /initrd.gz\n  APPEND console=ttyS0 quiet panic=-1\n' >"$tmp/syslinux.cfg"
  mcopy -i "$part" "$tmp/syslinux.cfg" ::/syslinux/syslinux.cfg
  syslinux --install --directory /syslinux "$part"
  # The disk: 1 MiB of MBR (boot code + one active partition of type EF,
  # which UEFI takes as the system partition) and the partition.
  rm -f "$img.tmp"
  truncate -s 1M "$img.tmp"
  cat "$part" >>"$img.tmp"
  printf 'label: dos\nstart=2048, type=ef, bootable\n' | sfdisk -q --wipe never "$img.tmp"
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$img.tmp" bs=440 count=1 conv=notrunc status=none
  mv -f "$img.tmp" "$img"
}
make_disk ready
make_disk silent
echo "$GUEST_VERSION" >"$GUEST_DIR/version"
log "guest: built $GUEST_DIR (kernel from $kpkg)"
