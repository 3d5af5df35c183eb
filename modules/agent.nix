# services.hozo.agent: the backup box's side of Hōzō.
#
# A plain NixOS module (the flake's nixosModules.agent only adds a default for `package`).
# Controllers log in as user `hozo` with a forced command (`hozo-agent serve`), which confines
# every receive to `roots`; the box keeps its own retention (`hozo-agent-prune.timer`), powers
# itself off through one polkit-allowed unit, and a timer powers it off when no controller has
# come for a while. agent/config.ts is the contract for the rendered /etc/hozo-agent/config.json.
#
# The agent runs as `hozo`, not root: the forced command parses requests from the network, and as
# `hozo` a bug in it can do no more than the ZFS delegation on the roots allows. What `hozo` cannot
# do is done by root elsewhere: pools are imported at boot (boot.zfs.extraPools) and exported by
# hozo-poweroff.service just before power-off (the agent's own exportOnShutdown is turned off).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    any
    attrValues
    concatLists
    concatMapStringsSep
    concatStringsSep
    escapeShellArg
    filter
    hasPrefix
    listToAttrs
    literalExpression
    mapAttrs
    mapAttrsToList
    mkDefault
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    nameValuePair
    optional
    optionalAttrs
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
  # For the prune and idle units: the booted system's zfs (it matches the loaded kernel module even after a switch
  # that upgraded ZFS), else the configured one.
  zfsPath = [
    "/run/booted-system/sw"
    config.boot.zfs.package
  ];
  zpool = lib.getExe' config.boot.zfs.package "zpool";
  systemctl = lib.getExe' config.systemd.package "systemctl";
  poolOf = ds: builtins.head (lib.splitString "/" ds);
  validDataset = ds: builtins.match "[A-Za-z][A-Za-z0-9_.:-]*(/[A-Za-z0-9_.:-]+)*" ds != null;
  isWithin = dir: p: p == dir || hasPrefix "${dir}/" p;

  # The line in ~hozo's authorized_keys: only `hozo-agent serve`, no pty, no forwarding.
  fromOption = optionalString (
    cfg.allowedFrom != [ ]
  ) '',from="${concatStringsSep "," cfg.allowedFrom}"'';
  keyLine = key: ''command="${agentExe} serve --config ${configPath}",restrict${fromOption} ${key}'';
  # A key of one controller section: its forced command names the section (agent/scope.ts).
  controllerKeyLine =
    name: key: ''command="${agentExe} serve --controller ${name} --config ${configPath}",restrict${fromOption} ${key}'';
  # Every root on the box (the sections' too): created, delegated, pools imported.
  allRoots = cfg.roots ++ concatLists (mapAttrsToList (_: c: c.roots) cfg.controllers);

  # The JSON shape of agentConfigSchema (agent/config.ts).
  generated = {
    inherit (cfg)
      roots
      pools
      idlePoweroffMinutes
      poweroffCommand
      poweroffDelaySeconds
      leaseDirectory
      stateDirectory
      allowRollback
      prepareTimeoutSeconds
      maxLeaseSeconds
      bufferSize
      ;
    retention = {
      inherit (cfg.retention)
        hourly
        daily
        weekly
        monthly
        yearly
        ;
    };
    # `zpool export` cannot be delegated, so as user hozo the agent's own export could only fail;
    # hozo-poweroff.service (root) exports the pools instead (exportPoolsOnPoweroff).
    exportOnShutdown = false;
  }
  // optionalAttrs cfg.scrub.enable {
    scrub = {
      inherit (cfg.scrub) everyDays keepAwakeMinutes;
      pauseOnShutdown = true;
      startCommand = [
        systemctl
        "start"
        "hozo-scrub@%p.service"
      ];
      pauseCommand = [
        systemctl
        "start"
        "hozo-scrub-pause@%p.service"
      ];
    };
  }
  // optionalAttrs (cfg.logFile != null) { inherit (cfg) logFile; }
  // optionalAttrs (cfg.controllers != { }) {
    controllers = mapAttrs (
      _: c:
      {
        inherit (c) roots;
      }
      // optionalAttrs (c.allowRollback != null) { inherit (c) allowRollback; }
      // optionalAttrs (c.appendOnly != null) { inherit (c) appendOnly; }
      // optionalAttrs (c.maxLeases != null) { inherit (c) maxLeases; }
      // optionalAttrs (c.maxReceives != null) { inherit (c) maxReceives; }
    ) cfg.controllers;
  };
  agentConfig = lib.recursiveUpdate generated cfg.settings;
  configFile = jsonFormat.generate "hozo-agent.json" agentConfig;

  canCheck = pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform;
  # Build-time `hozo-agent check-config` (the agent's own schema) of the rendered file.
  checkedConfig =
    pkgs.runCommand "hozo-agent-config-check"
      {
        nativeBuildInputs = [ cfg.package ];
        preferLocalBuild = true;
      }
      ''
        hozo-agent check-config --config ${configFile} >/dev/null
        touch $out
      '';

  # Pools the power-off unit exports: not those holding file systems NixOS mounts itself (the
  # root pool, `legacy` mounts), which systemd unmounts on the way down.
  fileSystemPools = unique (
    map (fs: poolOf fs.device) (
      filter (fs: fs.fsType == "zfs" && fs.device != null) (lib.attrValues config.fileSystems)
    )
  );
  exportPools = filter (p: !(builtins.elem p fileSystemPools)) cfg.pools;
  # The units user hozo may start (polkit): the power-off, and the scrub units of the pools.
  allowedUnits = [
    "hozo-poweroff.service"
  ]
  ++ lib.optionals cfg.scrub.enable (
    lib.concatMap (p: [
      "hozo-scrub@${p}.service"
      "hozo-scrub-pause@${p}.service"
    ]) cfg.pools
  );

  # systemd escapes "-" in device unit names (sys-subsystem-net-devices-<nic>.device).
  escapeDeviceName = lib.replaceStrings [ "-" ] [ "\\x2d" ];

  logDir = if cfg.logFile == null then null else dirOf cfg.logFile;
  sharedDirs = [
    "/"
    "/var"
    "/var/log"
    "/var/lib"
    "/tmp"
    "/run"
    "/etc"
    "/home"
  ];

  # The timer-driven units (idle-check, prune) write what `serve` writes: the state directory
  # (last-activity stamp, receive markers, agent.log), the leases, and the log file.
  stateUnderVarLib = hasPrefix "/var/lib/" cfg.stateDirectory;
  # StateDirectory= covers a state directory under /var/lib (and everything below it).
  writablePaths =
    optional (!stateUnderVarLib) cfg.stateDirectory
    ++ filter (p: !(isWithin cfg.stateDirectory p)) (
      [ cfg.leaseDirectory ] ++ optional (logDir != null) logDir
    );
  agentUnit =
    extra:
    hardening
    // {
      Type = "oneshot";
      User = user;
      Group = group;
    }
    // optionalAttrs (writablePaths != [ ]) { ReadWritePaths = writablePaths; }
    // optionalAttrs stateUnderVarLib {
      StateDirectory = lib.removePrefix "/var/lib/" cfg.stateDirectory;
      StateDirectoryMode = "0750";
    }
    // extra;

  hardening = import ./hardening.nix // {
    UMask = "0027";
  };

  retentionOption =
    default: what:
    mkOption {
      type = types.ints.between 0 10000;
      inherit default;
      description = "${what} snapshots `prune` keeps of each received dataset (the newest of that many periods).";
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

    controllers = mkOption {
      type = types.attrsOf (
        types.submodule {
          options = {
            authorizedKeys = mkOption {
              type = types.listOf types.singleLineStr;
              default = [ ];
              description = "This controller's public keys (bare); installed with `serve --controller <name>` as their forced command.";
            };
            roots = mkOption {
              type = types.listOf types.str;
              example = [ "backup/alice" ];
              description = "The only datasets this controller may list, receive into, read back or prune (no other section's).";
            };
            allowRollback = mkOption {
              type = types.nullOr types.bool;
              default = null;
              description = "Overrides `allowRollback` for this controller.";
            };
            appendOnly = mkOption {
              type = types.nullOr types.bool;
              default = null;
              description = "This controller's keys may only add snapshots: no `receive -F`, `prune` or `abort-receive` (the box still prunes by its own timer).";
            };
            quota = mkOption {
              type = types.nullOr (types.strMatching "[0-9]+(\\.[0-9]+)?[KMGTP]?");
              default = null;
              example = "500G";
              description = "A ZFS `quota` set (by root, at boot) on each of this controller's roots: its backups cannot fill the box's pool.";
            };
            maxReceives = mkOption {
              type = types.nullOr types.ints.positive;
              default = null;
              description = "Most receives this controller runs at once (default: the agent's own default, 4).";
            };
            maxLeases = mkOption {
              type = types.nullOr types.ints.positive;
              default = null;
              description = "Most leases this controller holds at once (default: the agent's own default).";
            };
          };
        }
      );
      default = { };
      example = literalExpression ''{ alice = { roots = [ "backup/alice" ]; authorizedKeys = [ "ssh-ed25519 AAAA… hozo@alice" ]; }; }'';
      description = ''
        One section per controller: its own roots, leases and limits, chosen by the forced command of
        its keys (`hozo-agent serve --controller <name>`). A controller cannot list, read, receive
        into, hold, release or see the leases of another's section; the box powers off after the
        last lease of any. With sections, keys in `authorizedKeys` (which name none) are refused.
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
      # Only valid roots: an invalid one already fails the module's own assertion, and its empty pool name would
      # fail zfs.nix's too (boot.zfs.extraPools).
      default = unique (map poolOf (filter validDataset allRoots));
      defaultText = lib.literalMD "the pools of `services.hozo.agent.roots` (and of the controllers' roots)";
      description = ''
        The box's backup pools: imported at boot (`boot.zfs.extraPools`), checked by the agent's
        `prepare`/`status`/`shutdown` (its `pools`), and exported by `hozo-poweroff.service`
        before power-off (`exportPoolsOnPoweroff`).
      '';
    };

    zfsPermissions = mkOption {
      type = types.listOf types.str;
      # What the agent (user hozo) runs below the roots, and the permission each needs
      # (zfs-allow(8); the kernel checks them in zfs_secpolicy_*):
      default = [
        # `zfs create -p -o canmount=off` of missing parents (the `receive` verb), and receiving a
        # new dataset: ZFS requires create (and mount) for every receive.
        "create"
        # Required alongside create, receive and destroy ("must also have the mount ability");
        # the agent never mounts anything (receives use -u).
        "mount"
        # The `receive` verb. `receive -F` (only with allowRollback) rolls back and drops
        # snapshots inside the receive ioctl, so neither `rollback` nor `destroy` is involved.
        # With OpenZFS >= 2.4 and allowRollback = false, `receive:append` would be enough.
        "receive"
        # The `send` verb (`hozo restore` reads the backups back through the agent).
        "send"
        # `zfs send -I` (restores with intermediate snapshots) puts temporary `.send-<pid>-<n>`
        # user holds on the snapshots it sends (libzfs, with a cleanup fd); without `hold` that
        # send fails. ZFS drops them itself when the send ends, so `release` is not needed.
        "hold"
        # `-o canmount=off` when creating parents and `-o canmount=noauto` on every receive, so a
        # backup never mounts itself at the next import or boot.
        "canmount"
        # `prune`: the box's own retention destroys snapshots below the roots (never the newest of
        # a dataset, never a held one); `abort-receive` (`zfs receive -A`) destroys a partial
        # receive. Controllers cannot ask for any other destroy: there is no verb.
        "destroy"
        # What every receive sets (`-o`) so that nothing received ever mounts, runs setuid
        # binaries or makes device nodes on this box, whatever
        # properties the stream carries. zfs receive exits 0 without one of them; the agent reads
        # the result back and fails that receive.
        "mountpoint"
        "setuid"
        "exec"
        "devices"
        "volmode"
        # Not needed: `rollback` (see receive), `release` (see hold), `userprop` (Hōzō sends no
        # properties: no `-p`), `reservation`/`refreservation` (excluded with `-x`, which needs
        # no permission; without it a stream's reservation cannot take effect either).
      ];
      description = ''
        Permissions delegated to user `hozo` on each root ({manpage}`zfs-allow(8)`). The default is
        what the agent needs (the list of src/zfs/delegation.ts, which the OpenZFS suite proves complete
        and minimal); see the comments in {file}`modules/agent.nix` for why each is there.
      '';
    };

    retention = {
      hourly = retentionOption 0 "Hourly";
      daily = retentionOption 7 "Daily";
      weekly = retentionOption 4 "Weekly (ISO weeks)";
      monthly = retentionOption 6 "Monthly";
      yearly = retentionOption 0 "Yearly";
    };

    scrub = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Scrub the pools across power cycles: at `prepare` (the start of a backup) the agent resumes a
          paused scrub or starts one when the last completed scrub is older than `everyDays`; when it
          shuts the box down it pauses a running scrub (`zpool scrub -p`), so the progress survives
          the power-off and the next wake goes on from there. Progress and the last scrub reach the
          controller's report and metrics. The scrub commands need root: they run as the units
          `hozo-scrub@<pool>.service` / `hozo-scrub-pause@<pool>.service`, which the polkit rule lets
          user hozo start for the configured pools and nothing else.
        '';
      };
      everyDays = mkOption {
        type = types.ints.between 1 366;
        default = 30;
        description = "Start a scrub when the last completed one is older than this many days.";
      };
      keepAwakeMinutes = mkOption {
        type = types.ints.between 0 1440;
        default = 0;
        description = "Keep the box up for a running scrub until this many minutes after boot (0: pause it at the next shutdown).";
      };
    };

    pruneSchedule = mkOption {
      type = types.nullOr types.str;
      default = "daily";
      example = "*-*-* 05:00:00";
      description = ''
        When `hozo-agent-prune.timer` applies `retention` (a systemd calendar expression). The
        timer is `Persistent=`, so on a box that sleeps most of the time it runs soon after the next
        boot. `null`: never prune (snapshots accumulate).
      '';
    };

    allowRollback = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Accept `receive -F` from controllers, which rolls a target back and may destroy snapshots
        on the box. Needed for controller jobs with `rollback = true`; leave it off otherwise, so a
        controller's key cannot discard backups.
      '';
    };

    idlePoweroffMinutes = mkOption {
      type = types.nullOr (types.ints.between 1 10080);
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

    poweroffDelaySeconds = mkOption {
      type = types.ints.between 0 300;
      default = 3;
      description = "After an accepted `shutdown`, the agent answers first and runs `poweroffCommand` this many seconds later.";
    };

    exportPoolsOnPoweroff = mkOption {
      type = types.bool;
      default = true;
      description = ''
        `hozo-poweroff.service` (root) runs `zpool export` on `pools` before powering off, so the
        disks are clean to unplug; a pool that cannot be exported is left to the normal shutdown
        (NixOS syncs it, and the same host imports it at the next boot). Pools with file systems in
        `fileSystems` are never exported here.
      '';
    };

    prepareTimeoutSeconds = mkOption {
      type = types.ints.between 0 3600;
      # The agent's default is 60. As user hozo its `zpool import` cannot succeed, so `prepare`
      # waits for zfs-import-<pool>.service, which itself waits up to 60 s for late disks.
      default = 90;
      description = ''
        How long the agent's `prepare` waits for `pools` to be imported. It runs as user `hozo`,
        which cannot import a pool: on this box `boot.zfs.extraPools` imports them at boot, and
        `prepare` waits for that (NixOS's import unit waits up to a minute for late USB disks).
      '';
    };

    bufferSize = mkOption {
      type = types.strMatching "[1-9][0-9]{0,4}M|[1-9]G|1[0-6]G";
      default = "128M";
      example = "32M";
      description = ''
        mbuffer's memory for a stream a controller sends with `buffer = "auto"` (hozo's default)
        or `"mbuffer"`: the buffer in front of `zfs receive` on this box. Lower it on a box with
        little RAM.
      '';
    };

    maxLeaseSeconds = mkOption {
      type = types.ints.between 1 2592000;
      default = 86400;
      description = "Longest lease a controller may take (its `hosts.<name>.leaseTtl`).";
    };

    stateDirectory = mkOption {
      type = types.str;
      default = "/var/lib/hozo-agent";
      description = "The agent's state: last-activity stamp, running-receive markers, and {file}`agent.log` (the audit log).";
    };

    leaseDirectory = mkOption {
      type = types.str;
      default = "${cfg.stateDirectory}/leases";
      defaultText = literalExpression ''"''${config.services.hozo.agent.stateDirectory}/leases"'';
      description = "Where the agent records which controllers are using the box.";
    };

    logFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/var/log/hozo-agent/agent.log";
      description = "The audit log (one line per request); `null`: {file}`agent.log` in `stateDirectory`. Its directory is given to user hozo.";
    };

    wakeOnLan.interfaces = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "enp3s0" ];
      description = ''
        Interfaces to arm for Wake-on-LAN (magic packet): `hozo-wol-<nic>.service` runs
        `ethtool -s <nic> wol g` when the interface appears and again right before power-off, for
        drivers that forget the setting. It does not touch `networking.interfaces`: an entry there
        is a whole interface configuration (with networkd a network file whose DHCP follows
        `useDHCP`, and a link file matched by `OriginalName=` that predictable names may never
        match, nixpkgs#415213), which could cost a box with its own network setup its address.
      '';
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = "Run `hozo-agent check-config` on the rendered config when the system is built.";
    };

    settings = mkOption {
      type = jsonFormat.type;
      default = { };
      description = "Escape hatch: merged over the generated {file}`${configPath}` (agent/config.ts is its schema).";
    };

    renderedConfig = mkOption {
      type = jsonFormat.type;
      readOnly = true;
      internal = true;
      description = "The attributes written to ${configPath} (for inspection and tests).";
    };
  };

  config = mkIf cfg.enable {
    services.hozo.agent.renderedConfig = agentConfig;

    assertions = [
      {
        assertion = config.boot.zfs.enabled;
        message = "services.hozo.agent needs ZFS on this box: set boot.supportedFilesystems = [ \"zfs\" ]; (and networking.hostId).";
      }
      {
        assertion = allRoots != [ ];
        message = "services.hozo.agent.roots is empty: list the datasets controllers may receive into, e.g. roots = [ \"backup/hozo\" ];";
      }
      {
        assertion = cfg.authorizedKeys != [ ] || any (c: c.authorizedKeys != [ ]) (attrValues cfg.controllers);
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
        assertion = hasPrefix "/" cfg.stateDirectory && hasPrefix "/" cfg.leaseDirectory;
        message = "services.hozo.agent.stateDirectory and leaseDirectory must be absolute paths.";
      }
      {
        assertion = logDir == null || (hasPrefix "/" cfg.logFile && !(builtins.elem logDir sharedDirs));
        message = "services.hozo.agent.logFile = \"${toString cfg.logFile}\": the module gives the file's directory to user hozo, so use an absolute path in a directory of its own, e.g. \"/var/log/hozo-agent/agent.log\".";
      }
    ]
    ++ map (root: {
      assertion = validDataset root;
      message = "services.hozo.agent.roots: \"${root}\" is not a dataset name like \"backup/hozo\" (no leading /, no @snapshot).";
    }) allRoots
    ++ optional (cfg.controllers != { }) {
      assertion = cfg.authorizedKeys == [ ];
      message = "services.hozo.agent.authorizedKeys must be empty when services.hozo.agent.controllers has sections: the agent refuses a key whose forced command names no section; put each key under its controller's authorizedKeys.";
    }
    ++ mapAttrsToList (name: _: {
      assertion = builtins.match "[a-z][a-z0-9_-]{0,31}" name != null;
      message = "services.hozo.agent.controllers.${name}: controller names are 1-32 of a-z 0-9 _ - starting with a letter.";
    }) cfg.controllers
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
      openssh.authorizedKeys.keys =
        map keyLine cfg.authorizedKeys
        ++ concatLists (mapAttrsToList (name: c: map (controllerKeyLine name) c.authorizedKeys) cfg.controllers);
    };
    users.groups.${group} = { };

    services.openssh.enable = mkDefault true;

    environment.etc."hozo-agent/config.json".source = configFile;

    system.checks = optional (cfg.checkConfig && canCheck) checkedConfig;

    # The receive side of a stream with buffer = mbuffer / compress = zstd.
    environment.systemPackages = [
      cfg.package
      pkgs.mbuffer
      pkgs.zstd
    ];

    # Imported at boot by root; the agent (user hozo) cannot import, its `prepare` waits for this.
    boot.zfs.extraPools = cfg.pools;

    # `serve` runs from sshd (no unit, no StateDirectory=), so the directories exist beforehand.
    systemd.tmpfiles.settings."10-hozo-agent" =
      {
        ${cfg.stateDirectory}.d = {
          inherit user group;
          mode = "0750";
        };
        ${cfg.leaseDirectory}.d = {
          inherit user group;
          mode = "0750";
        };
      }
      // optionalAttrs (logDir != null) {
        ${logDir}.d = {
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
            # Failures are counted, not fatal (the script runs under -e): the other roots are still prepared.
            for part in "''${parts[@]}"; do
              path=$path/$part
              if ! ${zfs} list -H -o name "$path" >/dev/null 2>&1; then
                ${zfs} create -o canmount=off "$path" || {
                  echo "hozo-agent: cannot create $path; $root not prepared" >&2
                  status=1
                  return
                }
              fi
            done
            ${zfs} allow -u ${user} ${escapeShellArg (concatStringsSep "," cfg.zfsPermissions)} "$root" || {
              echo "hozo-agent: zfs allow on $root failed" >&2
              status=1
            }
          }
          ${concatMapStringsSep "\n" (root: "prepare ${escapeShellArg root}") allRoots}
          ${concatStringsSep "\n" (
            concatLists (
              mapAttrsToList (
                _: c:
                map (root: "${zfs} set quota=${escapeShellArg c.quota} ${escapeShellArg root} || status=1") (
                  if c.quota == null then [ ] else c.roots
                )
              ) cfg.controllers
            )
          )}
          exit $status
        '';
        preStop = concatMapStringsSep "\n" (
          root:
          "${zfs} unallow -u ${user} ${escapeShellArg (concatStringsSep "," cfg.zfsPermissions)} ${escapeShellArg root} || true"
        ) allRoots;
      };

      # Started by the agent (through polkit) for an accepted shutdown or by the idle guard.
      hozo-poweroff = {
        description = "Power off the backup box (requested by hozo-agent)";
        serviceConfig.Type = "oneshot";
        script =
          optionalString cfg.exportPoolsOnPoweroff (
            concatMapStringsSep "\n" (pool: ''
              if ${zpool} list -H -o name ${escapeShellArg pool} >/dev/null 2>&1; then
                if ${zpool} export ${escapeShellArg pool}; then
                  echo "hozo-poweroff: exported ${pool}"
                else
                  echo "hozo-poweroff: could not export ${pool}; powering off anyway" >&2
                fi
              fi'') exportPools
          )
          + ''

            exec ${systemctl} --no-block poweroff
          '';
      };

      # Started by the agent (through polkit) at prepare and before a shutdown (scrub.enable).
      "hozo-scrub@" = mkIf cfg.scrub.enable {
        description = "Start or resume a scrub of pool %i (requested by hozo-agent)";
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${zpool} scrub %i";
        };
      };
      "hozo-scrub-pause@" = mkIf cfg.scrub.enable {
        description = "Pause the scrub of pool %i (requested by hozo-agent before a power-off)";
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${zpool} scrub -p %i";
        };
      };

      hozo-agent-idle = mkIf (cfg.idlePoweroffMinutes != null) {
        description = "Power the backup box off when Hōzō has left it idle";
        after = [ "zfs.target" ];
        path = zfsPath;
        serviceConfig = agentUnit {
          ExecStart = "${agentExe} idle-check --config ${configPath}";
        };
      };

      # The box's retention: the `prune` verb, run locally (the same code path as over SSH, logged
      # in the audit log without a source address).
      hozo-agent-prune = mkIf (cfg.pruneSchedule != null) {
        description = "Apply the backup box's snapshot retention (hozo-agent prune)";
        after = [
          "zfs.target"
          "hozo-agent-zfs.service"
        ];
        path = zfsPath;
        serviceConfig = agentUnit {
          # `prune`, not `serve`: box-wide (every controller section), and also where keys are appendOnly.
          ExecStart = "${agentExe} prune --config ${configPath}";
          # 3: a receive is running; the next run prunes (destroy failures still exit 1).
          SuccessExitStatus = [ "3" ];
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

    systemd.timers = {
      hozo-agent-idle = mkIf (cfg.idlePoweroffMinutes != null) {
        description = "Check every minute whether Hōzō has left the box idle";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnBootSec = "${toString cfg.idlePoweroffMinutes}min";
          OnUnitActiveSec = "1min";
          AccuracySec = "15s";
        };
      };
      hozo-agent-prune = mkIf (cfg.pruneSchedule != null) {
        description = "Schedule of the backup box's snapshot retention";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnCalendar = cfg.pruneSchedule;
          Persistent = true;
        };
      };
    };

    # hozo-agent may start hozo-poweroff.service (and, with scrub.enable, the scrub units of its
    # pools), and nothing else.
    security.polkit.enable = true;
    security.polkit.extraConfig = ''
      polkit.addRule(function (action, subject) {
        var units = ${builtins.toJSON allowedUnits};
        if (action.id == "org.freedesktop.systemd1.manage-units" &&
            units.indexOf(action.lookup("unit")) >= 0 &&
            action.lookup("verb") == "start" &&
            subject.user == "${user}") {
          return polkit.Result.YES;
        }
      });
    '';
  };
}
