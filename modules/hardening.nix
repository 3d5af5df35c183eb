# The systemd sandbox of Hōzō's units: the controller's job and verify units, the agent's prune and idle units
# (contrib/systemd has the same settings for hosts without NixOS; tests/unit/contrib-systemd.test.ts compares them).
# Each module adds its UMask and whatever only it needs.
{
  # Modelled on nixpkgs' syncoid units, with the changes Node and ZFS need (see each comment).
  AmbientCapabilities = "";
  CapabilityBoundingSet = "";
  # /dev/zfs is the only device; PrivateDevices= would hide it, so the device cgroup does the work.
  DevicePolicy = "closed";
  DeviceAllow = [ "/dev/zfs rw" ];
  LockPersonality = true;
  # No MemoryDenyWriteExecute: V8's JIT needs writable+executable pages.
  NoNewPrivileges = true;
  PrivateMounts = true;
  PrivateTmp = true;
  # ZFS ioctls fail inside a user namespace since zfs-2.2 (the same fix syncoid carries).
  PrivateUsers = false;
  ProtectClock = true;
  ProtectControlGroups = true;
  ProtectHome = true;
  ProtectHostname = true;
  ProtectKernelLogs = true;
  ProtectKernelModules = true;
  ProtectKernelTunables = true;
  # Hides other users' processes only (hozo-agent's units look for receives that run as hozo too).
  ProtectProc = "invisible";
  ProtectSystem = "strict";
  RemoveIPC = true;
  # AF_NETLINK: Node enumerates interfaces (the controller: broadcast address for Wake-on-LAN).
  RestrictAddressFamilies = [
    "AF_UNIX"
    "AF_INET"
    "AF_INET6"
    "AF_NETLINK"
  ];
  RestrictNamespaces = true;
  RestrictRealtime = true;
  RestrictSUIDSGID = true;
  SystemCallArchitectures = "native";
  SystemCallFilter = [
    "@system-service"
    "~@privileged"
    "~@keyring"
    "~@memlock"
  ];
  SystemCallErrorNumber = "EPERM";
}
