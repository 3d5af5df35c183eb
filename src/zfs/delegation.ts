// The `zfs allow` sets Hōzō needs when it does not run as root (OpenZFS delegation, zfs-allow(8)). The NixOS modules'
// defaults (modules/controller.nix, modules/agent.nix), the docs and the lab use these lists; the OpenZFS suite
// (tests/openzfs/delegation.test.ts) runs both sides as non-root users with exactly them, then takes each one away and
// sees the failure it causes. Each entry is there for a command the kernel checks it for (zfs_secpolicy_*).

/** On every source dataset, for the user the controller's jobs run as. */
export const CONTROLLER_PERMISSIONS = [
  // `zfs send` (full, incremental, resumed with -t). The `-n -P` estimate worked without any delegation.
  'send',
  // Protecting the incremental base (`zfs hold hozo:<job>`); `zfs send -I` also puts temporary holds on what it
  // sends (libzfs, with a cleanup fd), so without it an incremental with intermediates fails outright.
  'hold',
  // Moving that hold: `zfs release` of the previous base.
  'release',
  // `zfs bookmark` of the verified base, so the next incremental survives the snapshot being pruned.
  'bookmark',
] as const;

/** In addition, on the sources of jobs that take their own snapshots (job `snapshot.create`). */
export const OWN_SNAPSHOT_PERMISSIONS = [
  // `zfs snapshot` (the kernel checks `mount` beside it).
  'snapshot',
  'mount',
  // Pruning the job's own snapshots beyond keep. zfs-allow(8) has no snapshot-only destroy: it reaches the
  // dataset too, which is why only these sources get it.
  'destroy',
] as const;

/** On each root on the box, for the user hozo-agent runs as (its SSH forced command). */
export const AGENT_PERMISSIONS = [
  // `zfs create -p -o canmount=off` of missing parents; every `zfs receive` requires it too.
  'create',
  // Required by the kernel with create, receive and destroy; the agent mounts nothing (`receive -u`).
  'mount',
  // The `receive` verb (`receive -F` with allowRollback rolls back inside the receive: no `rollback` needed).
  'receive',
  // The `send` verb: `hozo restore` reads the backups back.
  'send',
  // `zfs send -I` (restores with intermediate snapshots) puts temporary holds on what it sends.
  'hold',
  // `-o canmount=off` on created parents and `-o canmount=noauto` on every receive (zfs-fuse: `zfs set` after a first
  // receive), so a backup never mounts itself at the next import or boot.
  'canmount',
  // `prune` (the box's own retention) and `abort-receive` (`zfs receive -A` destroys the partial state).
  'destroy',
  // What every receive sets (zfs/argv.ts receiveProtection: received datasets never mount, run setuid binaries or
  // make device nodes). Without one of them zfs receive still exits 0 ("cannot receive
  // setuid property ... permission denied"); the agent reads the result back and fails that receive.
  'mountpoint',
  'setuid',
  'exec',
  'devices',
  'volmode',
  // Not needed: `reservation`, `refreservation` (excluded with -x, which needs no permission; without it a stream's
  // reservation cannot take effect either).
] as const;
