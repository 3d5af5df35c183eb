# services.hozo.agent: the backup box's side of Hōzō.
#
# A plain NixOS module (the flake's nixosModules.agent only adds a default for `package`).
# Controllers log in as user `hozo` with a forced command (`hozo-agent serve`), which confines
# every receive to `roots`; the box keeps its own retention, powers itself off through one
# polkit-allowed unit, and a timer powers it off when no controller has come for a while.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    concatMapStringsSep
    concatStringsSep
    escapeShellArg
    hasPrefix
    listToAttrs
    literalExpression
    mkDefault
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    nameValuePair
    optionalString
    types
    unique
    ;

  cfg = config.services.hozo.agent;
  jsonFormat = pkgs.formats.json { };

  user = "hozo";
  group = "hozo";
  configPath = "/etc/hozo-agent/config.json";
  agentExe = lib.getExe' cfg.package "hozo-agent";
  zfs = lib.getExe' config.boot.zfs.package "zfs";
  zpool = lib.getExe' config.boot.zfs.package "zpool";
  systemctl = lib.getExe' config.systemd.package "systemctl";
  poolOf = ds: builtins.head (lib.splitString "/" ds);
  validDataset = ds: builtins.match "[A-Za-z][A-Za-z0-9_.:-]*(/[A-Za-z0-9_.:-]+)*" ds != null;

  # The line in ~hozo's authorized_keys: only `hozo-agent serve`, no pty, no forwarding.
  fromOption = optionalString (
    cfg.allowedFrom != [ ]
  ) '',from="${concatStringsSep "," cfg.allowedFrom}"'';
  keyLine = key: ''command="${agentExe} serve --config ${configPath}",restrict${fromOption} ${key}'';

  agentConfig = lib.recursiveUpdate {
    inherit (cfg)
      roots
      idlePoweroffMinutes
      poweroffCommand
      leaseDirectory
      ;
    retention = { inherit (cfg.retention) daily weekly monthly; };
  } cfg.settings;

  # systemd escapes "-" in device unit names (sys-subsystem-net-devices-<nic>.device).
  escapeDeviceName = lib.replaceStrings [ "-" ] [ "\\x2d" ];

  hardening = {
    AmbientCapabilities = "";
    CapabilityBoundingSet = "";
    DevicePolicy = "closed";
    DeviceAllow = [ "/dev/zfs rw" ];
    LockPersonality = true;
    NoNewPrivileges = true;
    PrivateMounts = true;
    PrivateTmp = true;
    PrivateUsers = false;
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHome = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectProc = "invisible";
    ProtectSystem = "strict";
    RemoveIPC = true;
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
    UMask = "0027";
  };
in
{
  options.services.hozo.agent = {
    enable = mkEnableOption "the Hōzō agent on a backup box (an SSH forced command for user hozo)";

    package = mkPackageOption pkgs "hozo" {
      extraDescription = "Hōzō is not in Nixpkgs: the flake's `nixosModules.agent` sets this, or add the overlay in this repository's {file}`nix/overlay.nix`.";
    };

    authorizedKeys = mkOption {
      type = types.listOf types.singleLineStr;
      default = [ ];
      example = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... hozo@controller" ];
      description = ''
        Public keys of the controllers, bare (type, key, comment). Each is installed for user
        `hozo` as `command="…/hozo-agent serve --config ${configPath}",restrict <key>`, so a
        controller can only speak the agent's protocol.
      '';
    };

    allowedFrom = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "192.168.1.10" ];
      description = "If set, the keys are only accepted from these addresses (an authorized_keys `from=` pattern list).";
    };

    roots = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "backup/hozo" ];
      description = ''
        Datasets controllers may receive into (and below). Missing ones are created with
        `canmount=off`, as are their missing parents, and `zfsPermissions` are delegated on them
        to user `hozo`.
      '';
    };

    pools = mkOption {
      type = types.listOf types.str;
      default = unique (map poolOf cfg.roots);
      defaultText = literalExpression "the pools of services.hozo.agent.roots";
      description = "Pools imported at boot (`boot.zfs.extraPools`).";
    };

    zfsPermissions = mkOption {
      type = types.listOf types.str;
      default = [
        "create"
        "mount"
        "receive"
        "rollback"
        "hold"
        "release"
        # for the agent's own retention (it refuses destroy requests from controllers)
        "destroy"
        "userprop"
        "canmount"
        "mountpoint"
        "readonly"
        "compression"
      ];
      description = "Permissions delegated to user `hozo` on each root ({manpage}`zfs-allow(8)`).";
    };

    retention = {
      daily = mkOption {
        type = types.ints.unsigned;
        default = 7;
        description = "Daily snapshots the box keeps of each received dataset.";
      };
      weekly = mkOption {
        type = types.ints.unsigned;
        default = 4;
        description = "Weekly snapshots the box keeps.";
      };
      monthly = mkOption {
        type = types.ints.unsigned;
        default = 6;
        description = "Monthly snapshots the box keeps.";
      };
    };

    idlePoweroffMinutes = mkOption {
      type = types.nullOr types.ints.positive;
      default = 30;
      description = ''
        Power the box off when no controller has held a lease for this many minutes (checked by
        `hozo-agent-idle.timer`). `null` turns the idle guard off. Stop the timer while you work
        on the box.
      '';
    };

    poweroffCommand = mkOption {
      type = types.listOf types.str;
      default = [
        systemctl
        "start"
        "--no-block"
        "hozo-poweroff.service"
      ];
      defaultText = literalExpression ''[ "''${config.systemd.package}/bin/systemctl" "start" "--no-block" "hozo-poweroff.service" ]'';
      description = "Argument vector the agent runs to power the box off (the polkit rule lets user hozo start hozo-poweroff.service and nothing else).";
    };

    leaseDirectory = mkOption {
      type = types.str;
      default = "/var/lib/hozo-agent/leases";
      description = "Where the agent records which controllers are using the box.";
    };

    wakeOnLan.interfaces = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "enp3s0" ];
      description = ''
        Interfaces to arm for Wake-on-LAN (magic packet): sets
        `networking.interfaces.<nic>.wakeOnLan.enable` and adds `hozo-wol-<nic>.service`, which
        runs `ethtool -s <nic> wol g` at boot and again right before power-off, for drivers that
        forget the setting.
      '';
    };

    settings = mkOption {
      type = jsonFormat.type;
      default = { };
      description = "Escape hatch: merged over the generated {file}`${configPath}`.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.roots != [ ];
        message = "services.hozo.agent.roots is empty: list the datasets controllers may receive into, e.g. roots = [ \"backup/hozo\" ];";
      }
      {
        assertion = cfg.authorizedKeys != [ ];
        message = "services.hozo.agent.authorizedKeys is empty: add the controller's public key (the .pub of its services.hozo.controller.hosts.<name>.sshKeyFile).";
      }
      {
        assertion = config.services.openssh.enable;
        message = "services.hozo.agent needs services.openssh.enable = true: controllers reach the agent over SSH.";
      }
      {
        assertion = cfg.poweroffCommand != [ ];
        message = "services.hozo.agent.poweroffCommand is empty: give the argument vector that powers the box off.";
      }
      {
        assertion = hasPrefix "/" cfg.leaseDirectory;
        message = "services.hozo.agent.leaseDirectory must be an absolute path.";
      }
    ]
    ++ map (root: {
      assertion = validDataset root;
      message = "services.hozo.agent.roots: \"${root}\" is not a dataset name like \"backup/hozo\" (no leading /, no @snapshot).";
    }) cfg.roots
    ++ map (key: {
      assertion = builtins.match "(ssh-|ecdsa-|sk-).*" key != null;
      message = "services.hozo.agent.authorizedKeys: \"${key}\" does not start with a key type (ssh-ed25519, ecdsa-sha2-…, sk-…). Give bare public keys; the module adds command=\"…hozo-agent serve…\",restrict itself.";
    }) cfg.authorizedKeys;

    users.users.${user} = {
      isSystemUser = true;
      inherit group;
      description = "Hōzō ZFS replication";
      # sshd runs the forced command through the login shell.
      useDefaultShell = true;
      openssh.authorizedKeys.keys = map keyLine cfg.authorizedKeys;
    };
    users.groups.${group} = { };

    services.openssh.enable = mkDefault true;

    environment.etc."hozo-agent/config.json".source = jsonFormat.generate "hozo-agent.json" agentConfig;

    # The receive side of a stream with buffer = mbuffer / compress = zstd.
    environment.systemPackages = [
      cfg.package
      pkgs.mbuffer
      pkgs.zstd
    ];

    boot.zfs.extraPools = cfg.pools;

    systemd.tmpfiles.settings."10-hozo-agent" = {
      "/var/lib/hozo-agent".d = {
        inherit user group;
        mode = "0750";
      };
      ${cfg.leaseDirectory}.d = {
        inherit user group;
        mode = "0750";
      };
    };

    systemd.services = {
      # Standing delegation (controllers come whenever the box is up); stopping the unit
      # (module disabled, roots changed, power-off) runs `zfs unallow`.
      hozo-agent-zfs = {
        description = "Prepare Hōzō's backup roots (canmount=off parents, receive delegation)";
        after = [
          "zfs-import.target"
          "zfs.target"
        ];
        wants = [ "zfs.target" ];
        wantedBy = [ "multi-user.target" ];
        path = [ config.boot.zfs.package ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        script = ''
          status=0
          prepare() { # prepare ROOT
            local root=$1 pool=''${1%%/*} path rest part
            if ! ${zpool} list -H -o name "$pool" >/dev/null 2>&1; then
              echo "hozo-agent: pool $pool is not imported; cannot prepare $root" >&2
              status=1
              return
            fi
            path=$pool
            rest=''${root#"$pool"}
            IFS=/ read -ra parts <<<"''${rest#/}"
            for part in "''${parts[@]}"; do
              path=$path/$part
              if ! ${zfs} list -H -o name "$path" >/dev/null 2>&1; then
                ${zfs} create -o canmount=off "$path"
              fi
            done
            ${zfs} allow -u ${user} ${escapeShellArg (concatStringsSep "," cfg.zfsPermissions)} "$root"
          }
          ${concatMapStringsSep "\n" (root: "prepare ${escapeShellArg root}") cfg.roots}
          exit $status
        '';
        preStop = concatMapStringsSep "\n" (
          root:
          "${zfs} unallow -u ${user} ${escapeShellArg (concatStringsSep "," cfg.zfsPermissions)} ${escapeShellArg root} || true"
        ) cfg.roots;
      };

      hozo-poweroff = {
        description = "Power off the backup box (requested by hozo-agent)";
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${systemctl} --no-block poweroff";
        };
      };

      hozo-agent-idle = mkIf (cfg.idlePoweroffMinutes != null) {
        description = "Power the backup box off when Hōzō has left it idle";
        after = [ "zfs.target" ];
        path = [ config.boot.zfs.package ];
        serviceConfig = hardening // {
          Type = "oneshot";
          User = user;
          Group = group;
          ExecStart = "${agentExe} idle-check --config ${configPath}";
          ReadWritePaths = [ cfg.leaseDirectory ];
        };
      };
    }
    // listToAttrs (
      map (
        nic:
        let
          device = "sys-subsystem-net-devices-${escapeDeviceName nic}.device";
        in
        nameValuePair "hozo-wol-${nic}" {
          description = "Arm Wake-on-LAN (magic packet) on ${nic}";
          after = [ device ];
          bindsTo = [ device ];
          wantedBy = [ "multi-user.target" ];
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            # Again on stop, i.e. right before power-off: some drivers reset the setting.
            ExecStart = "${lib.getExe' pkgs.ethtool "ethtool"} -s ${escapeShellArg nic} wol g";
            ExecStop = "${lib.getExe' pkgs.ethtool "ethtool"} -s ${escapeShellArg nic} wol g";
          };
        }
      ) cfg.wakeOnLan.interfaces
    );

    systemd.timers.hozo-agent-idle = mkIf (cfg.idlePoweroffMinutes != null) {
      description = "Check every minute whether Hōzō has left the box idle";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "${toString cfg.idlePoweroffMinutes}min";
        OnUnitActiveSec = "1min";
        AccuracySec = "15s";
      };
    };

    networking.interfaces = lib.genAttrs cfg.wakeOnLan.interfaces (_: {
      wakeOnLan.enable = true;
    });

    # hozo-agent may start hozo-poweroff.service, and nothing else.
    security.polkit.enable = true;
    security.polkit.extraConfig = ''
      polkit.addRule(function (action, subject) {
        if (action.id == "org.freedesktop.systemd1.manage-units" &&
            action.lookup("unit") == "hozo-poweroff.service" &&
            action.lookup("verb") == "start" &&
            subject.user == "${user}") {
          return polkit.Result.YES;
        }
      });
    '';
  };
}
