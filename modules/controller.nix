# services.hozo.controller: replicate local ZFS datasets to a (sleeping) backup box.
#
# A plain NixOS module: import it directly, or through the flake's nixosModules.controller,
# which only adds a default for `package`. It renders the binary's config (src/config/schema.ts
# is the contract), one hozo-<job>.service + .timer per job, ZFS delegation for the service user,
# sanoid snapshot policy, logrotate and node-exporter wiring.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    attrNames
    attrValues
    concatLists
    concatMap
    concatMapStringsSep
    concatStringsSep
    escapeShellArg
    escapeShellArgs
    filter
    filterAttrs
    hasPrefix
    literalExpression
    mapAttrs
    mapAttrs'
    mapAttrsToList
    mkDefault
    mkEnableOption
    mkIf
    mkMerge
    mkOption
    mkPackageOption
    nameValuePair
    optional
    optionalAttrs
    optionals
    types
    unique
    ;

  cfg = config.services.hozo.controller;
  jsonFormat = pkgs.formats.json { };
  nodeExporter = config.services.prometheus.exporters.node;

  configPath = "/etc/hozo/config.json";
  jobConfigPath = name: "/etc/hozo/jobs/${name}.json";
  unitName = name: "hozo-${name}";
  # Where systemd's LoadCredential= puts the key for this job's unit.
  credentialPath = job: host: "/run/credentials/${unitName job}.service/ssh-key-${host}";

  # Names that become unit names and credential names (the binary's NAME rule).
  validName = n: builtins.match "[A-Za-z0-9][A-Za-z0-9_.-]*" n != null;
  isStorePath = p: p != null && hasPrefix "${builtins.storeDir}/" (toString p);
  dropNulls = filterAttrs (_: v: v != null);

  # Either seconds or a duration string like "5m" (the binary's duration rule).
  durationType = types.either types.ints.unsigned (types.strMatching "[0-9]+(\\.[0-9]+)?([smhd][0-9.smhd]*)?");

  datasetModule = {
    options = {
      source = mkOption {
        type = types.str;
        example = "tank/home";
        description = "Local dataset to replicate.";
      };
      target = mkOption {
        type = types.str;
        example = "backup/hozo/home";
        description = "Dataset on the job's host to receive into (below one of the agent's `roots`).";
      };
      recursive = mkOption {
        type = types.bool;
        default = false;
        description = "Replicate the datasets below `source` as well.";
      };
      exclude = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "tank/home/cache" ];
        description = "Descendants of `source` to leave out (only with `recursive = true`).";
      };
    };
  };

  wakeModule = {
    options = {
      method = mkOption {
        type = types.enum [
          "wol"
          "ssh-relay"
          "http"
          "command"
          "none"
        ];
        default = "wol";
        description = "How to wake the host before a run.";
      };
      mac = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "52:54:00:7a:0b:01";
        description = "MAC address for the magic packet (`method = \"wol\"`).";
      };
      address = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "192.168.1.255";
        description = "Broadcast (or unicast) address the magic packet is sent to.";
      };
      port = mkOption {
        type = types.port;
        default = 9;
        description = "UDP port of the magic packet.";
      };
    };
  };

  hostModule =
    { name, ... }:
    {
      options = {
        address = mkOption {
          type = types.str;
          example = "backupbox.lan";
          description = "Host name or IP address of the backup box.";
        };
        port = mkOption {
          type = types.port;
          default = 22;
          description = "SSH port of the backup box.";
        };
        user = mkOption {
          type = types.str;
          # The user services.hozo.agent creates (the binary's own default is root).
          default = "hozo";
          description = "SSH user on the box; `hozo` is the user `services.hozo.agent` creates.";
        };
        sshKeyFile = mkOption {
          type = types.nullOr (types.coercedTo types.path toString types.str);
          default = null;
          example = literalExpression "config.sops.secrets.\"hozo/box-ssh-key\".path";
          description = ''
            Private SSH key for this host: an absolute path outside the Nix store, readable by root
            (for example a sops-nix or agenix secret). Each job unit receives it through systemd's
            `LoadCredential=`, so the service user never reads the original file, and the config that
            unit reads names the copy under {file}`/run/credentials/hozo-<job>.service/ssh-key-${name}`.
          '';
        };
        knownHostsFile = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = ''
            known_hosts file with the box's host key. Defaults to {file}`/etc/ssh/ssh_known_hosts`
            when `hostPublicKey` is set, which this module adds to `programs.ssh.knownHosts`.
          '';
        };
        hostPublicKey = mkOption {
          type = types.nullOr types.singleLineStr;
          default = null;
          example = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...";
          description = ''
            The box's SSH host public key (its {file}`/etc/ssh/ssh_host_ed25519_key.pub`). Added to
            `programs.ssh.knownHosts`; host key checking is never turned off.
          '';
        };
        sshOptions = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "Ciphers=aes128-gcm@openssh.com" ];
          description = "Extra `ssh -o Key=value` options.";
        };
        wake = mkOption {
          type = types.nullOr (types.submodule wakeModule);
          default = null;
          example = literalExpression ''
            {
              method = "wol";
              mac = "52:54:00:7a:0b:01";
              address = "192.168.1.255";
            }
          '';
          description = "How to wake the box; `null` assumes it is always on.";
        };
        readyTimeout = mkOption {
          type = durationType;
          default = 300;
          example = "10m";
          description = "How long to wait for the box to answer SSH after waking it (seconds or a duration).";
        };
        shutdown = mkOption {
          type = types.enum [
            "agent"
            "ssh"
            "none"
          ];
          default = "agent";
          description = "How to put the box back to sleep after a job with `shutdownAfter`: ask its agent, run poweroff over SSH, or leave it on.";
        };
      };
    };

  policyModule = {
    options = {
      hourly = mkOption {
        type = types.ints.unsigned;
        default = 24;
        description = "Hourly snapshots sanoid keeps.";
      };
      daily = mkOption {
        type = types.ints.unsigned;
        default = 14;
        description = "Daily snapshots sanoid keeps.";
      };
      monthly = mkOption {
        type = types.ints.unsigned;
        default = 6;
        description = "Monthly snapshots sanoid keeps.";
      };
      yearly = mkOption {
        type = types.ints.unsigned;
        default = 0;
        description = "Yearly snapshots sanoid keeps.";
      };
    };
  };

  jobModule =
    { name, ... }:
    {
      options = {
        host = mkOption {
          type = types.str;
          example = "box";
          description = "A name from `services.hozo.controller.hosts`, or `\"local\"` for a target on this machine.";
        };
        datasets = mkOption {
          type = types.listOf (types.submodule datasetModule);
          default = [ ];
          description = "Datasets this job replicates.";
        };
        snapshots = {
          send = mkOption {
            type = types.enum [
              "all"
              "latest"
            ];
            default = "all";
            description = ''
              Which source snapshots to send: every snapshot since the common base, or only the
              newest. Rendered as the job's `snapshots` key in the binary's config.
            '';
          };
          policy = mkOption {
            type = types.nullOr (types.submodule policyModule);
            default = null;
            example = literalExpression "{ hourly = 24; daily = 14; monthly = 6; }";
            description = ''
              Snapshot schedule for the job's sources. When set, the module enables
              `services.sanoid` with a template `hozo-${name}` and dataset entries for each source
              (all with `mkDefault`, so sanoid settings of your own win). `null`: take snapshots
              yourself.
            '';
          };
        };
        rollback = mkOption {
          type = types.bool;
          default = false;
          description = "Roll the target back to the common snapshot when it was modified.";
        };
        schedule = mkOption {
          type = types.str;
          default = "daily";
          example = "*-*-* 02:30:00";
          description = "When to run, as a systemd calendar expression ({manpage}`systemd.time(7)`).";
        };
        randomizedDelaySec = mkOption {
          type = types.str;
          default = "30min";
          description = "`RandomizedDelaySec=` of the job's timer.";
        };
        persistent = mkOption {
          type = types.bool;
          default = true;
          description = "Run a missed schedule at next boot (`Persistent=`).";
        };
        timeout = mkOption {
          type = types.str;
          default = "12h";
          description = "`TimeoutStartSec=` of the job's service: longest a run may take.";
        };
        restartDelay = mkOption {
          type = types.str;
          default = "15min";
          description = "`RestartSec=`: wait this long before running a failed job again.";
        };
        restartAttempts = mkOption {
          type = types.ints.unsigned;
          default = 3;
          description = "How often systemd reruns a failed job within 6 hours (exit 2, a config error, is not retried).";
        };
        shutdownAfter = mkOption {
          type = types.bool;
          default = true;
          description = "Put the host back to sleep after the run.";
        };
        retries = mkOption {
          type = types.ints.between 0 100;
          default = 3;
          description = "Retries of a failed dataset within one run.";
        };
        retryDelay = mkOption {
          type = durationType;
          default = 60;
          description = "Pause between those retries (seconds or a duration).";
        };
        buffer = mkOption {
          type = types.enum [
            "auto"
            "mbuffer"
            "none"
          ];
          default = "none";
          description = "Put mbuffer on both ends of the stream.";
        };
        compress = mkOption {
          type = types.enum [
            "zstd"
            "none"
          ];
          default = "none";
          description = "Compress the stream in transit with zstd.";
        };
        service = mkOption {
          type = types.attrs;
          default = { };
          description = "Extra systemd service settings for this job's unit, merged last.";
        };
      };
    };

  # ---- rendering (the JSON shape of src/config/schema.ts) ----

  renderHost =
    name: h:
    dropNulls {
      inherit (h)
        address
        port
        user
        sshKeyFile
        sshOptions
        readyTimeout
        shutdown
        ;
      knownHostsFile =
        if h.knownHostsFile != null then
          h.knownHostsFile
        else if h.hostPublicKey != null then
          "/etc/ssh/ssh_known_hosts"
        else
          null;
      wake =
        if h.wake == null then
          null
        else
          dropNulls {
            inherit (h.wake)
              method
              mac
              address
              port
              ;
          };
    };

  renderJob = name: j: {
    inherit name;
    inherit (j)
      host
      rollback
      schedule
      shutdownAfter
      retries
      retryDelay
      buffer
      compress
      ;
    snapshots = j.snapshots.send;
    datasets = map (d: {
      inherit (d)
        source
        target
        recursive
        exclude
        ;
    }) j.datasets;
  };

  generated = dropNulls {
    inherit (cfg) stateDirectory logFile;
    metrics =
      if cfg.metrics.textfileDirectory == null then
        null
      else
        { inherit (cfg.metrics) textfileDirectory; };
    hosts = mapAttrs renderHost cfg.hosts;
    jobs = mapAttrsToList renderJob cfg.jobs;
  };

  # settings is merged over the generated attrs (lists, like `jobs`, are replaced whole).
  rendered = lib.recursiveUpdate generated cfg.settings;
  renderedHosts = rendered.hosts or { };
  renderedJobs = rendered.jobs or [ ];

  hostOfJob = name: (cfg.jobs.${name} or { host = null; }).host;
  keyOf = host: (renderedHosts.${host} or { }).sshKeyFile or null;

  # The config one job's unit reads: its job, its host, and the key where LoadCredential put it.
  renderJobConfig =
    name:
    let
      host = hostOfJob name;
      hostAttrs = renderedHosts.${host} or null;
    in
    rendered
    // {
      hosts = optionalAttrs (hostAttrs != null) {
        ${host} =
          hostAttrs
          // optionalAttrs (hostAttrs ? sshKeyFile) { sshKeyFile = credentialPath name host; };
      };
      jobs = filter (j: j.name or null == name) renderedJobs;
    };
  renderedJobConfigs = lib.genAttrs (attrNames cfg.jobs) renderJobConfig;

  configFile = jsonFormat.generate "hozo-config.json" rendered;
  jobConfigFiles = mapAttrs (name: c: jsonFormat.generate "hozo-${name}.json" c) renderedJobConfigs;

  canCheck = pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform;
  # Build-time `hozo config check` of every file the module writes (system.checks).
  checkedConfig =
    pkgs.runCommand "hozo-config-check"
      {
        nativeBuildInputs = [ cfg.package ];
        preferLocalBuild = true;
      }
      ''
        ${concatMapStringsSep "\n" (f: "hozo config check --config ${f}") (
          [ configFile ] ++ attrValues jobConfigFiles
        )}
        touch $out
      '';

  # ---- ZFS delegation ----

  zfs = lib.getExe' config.boot.zfs.package "zfs";
  allJobs = attrValues cfg.jobs;
  sourceDatasets = unique (concatMap (j: map (d: d.source) j.datasets) allJobs);
  localTargets = unique (
    concatMap (j: optionals (j.host == "local") (map (d: d.target) j.datasets)) allJobs
  );
  delegate = cfg.user != "root" && (sourceDatasets != [ ] || localTargets != [ ]);
  perms = concatStringsSep ",";

  # ---- metrics ----

  defaultTextfileDirectory = "/var/lib/prometheus-node-exporter-text-files";
  wireNodeExporter =
    nodeExporter.enable
    && cfg.metrics.configureNodeExporter
    && cfg.metrics.textfileDirectory != null;

  # ---- assertions ----

  knownHostNames = attrNames cfg.hosts;
  targetUses = concatLists (
    mapAttrsToList (
      jn: j:
      map (d: {
        key = "${j.host}:${d.target}";
        what = "services.hozo.controller.jobs.${jn} (target \"${d.target}\" on host \"${j.host}\")";
      }) j.datasets
    ) cfg.jobs
  );
  duplicateTargets = filter (k: builtins.length (filter (u: u.key == k) targetUses) > 1) (
    unique (map (u: u.key) targetUses)
  );
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

  stateUnderVarLib = hasPrefix "/var/lib/" cfg.stateDirectory;
  rwPaths =
    optional (!stateUnderVarLib) cfg.stateDirectory
    ++ optional (cfg.metrics.textfileDirectory != null) cfg.metrics.textfileDirectory
    ++ optional (logDir != null) logDir;

  hardening = {
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
    ProcSubset = "all";
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
    # AF_NETLINK: Node enumerates interfaces (broadcast address for Wake-on-LAN).
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
    # 0022, not syncoid's 0066: node-exporter (another user) must read the .prom files.
    UMask = "0022";
  };
in
{
  options.services.hozo.controller = {
    enable = mkEnableOption "Hōzō, replication of ZFS datasets to a sleeping backup box";

    package = mkPackageOption pkgs "hozo" {
      extraDescription = "Hōzō is not in Nixpkgs: the flake's `nixosModules.controller` sets this, or add the overlay in this repository's {file}`nix/overlay.nix`.";
    };

    user = mkOption {
      type = types.str;
      default = "hozo";
      description = ''
        User the jobs run as. When it is not `root`, the module delegates the ZFS permissions
        in `zfsPermissions` on every source dataset to it (and the receive permissions on local
        targets) with `zfs allow`, and removes them again with `zfs unallow` when the
        delegation unit stops (module disabled, datasets changed, shutdown).
      '';
    };

    group = mkOption {
      type = types.str;
      default = "hozo";
      description = "Group the jobs run as.";
    };

    zfsPermissions = mkOption {
      type = types.listOf types.str;
      default = [
        "send"
        "hold"
        "release"
        "snapshot"
        "mount"
        "bookmark"
      ];
      description = "Permissions delegated to `user` on source datasets ({manpage}`zfs-allow(8)`).";
    };

    localTargetPermissions = mkOption {
      type = types.listOf types.str;
      default = [
        "create"
        "mount"
        "receive"
        "rollback"
        "hold"
        "release"
      ];
      description = "Permissions delegated to `user` on the targets of jobs with `host = \"local\"` (or their parent, while the target does not exist yet).";
    };

    stateDirectory = mkOption {
      type = types.str;
      default = "/var/lib/hozo";
      description = "The binary's state directory (and the service user's home).";
    };

    logFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/var/log/hozo/hozo.log";
      description = ''
        Also append log lines to this file (the journal gets them regardless). Its directory is
        given to the service user, so it must be a directory of its own; the file is rotated
        daily, 14 kept, with `services.logrotate`.
      '';
    };

    metrics = {
      textfileDirectory = mkOption {
        type = types.nullOr types.str;
        default = if nodeExporter.enable then defaultTextfileDirectory else null;
        defaultText = literalExpression ''
          if config.services.prometheus.exporters.node.enable
          then "${defaultTextfileDirectory}" else null
        '';
        description = ''
          Directory for the `hozo_<job>.prom` files of node-exporter's textfile collector
          (`null`: no metrics file). The module creates it with systemd-tmpfiles.
        '';
      };
      configureNodeExporter = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Add `--collector.textfile.directory=` for `metrics.textfileDirectory` to
          `services.prometheus.exporters.node.extraFlags` (when node-exporter is enabled). Turn it
          off if you already pass that flag for another directory.
        '';
      };
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = "Run `hozo config check` on the rendered config files when the system is built.";
    };

    hosts = mkOption {
      type = types.attrsOf (types.submodule hostModule);
      default = { };
      example = literalExpression ''
        {
          box = {
            address = "backupbox.lan";
            sshKeyFile = config.sops.secrets."hozo/box-ssh-key".path;
            hostPublicKey = "ssh-ed25519 AAAA...";
            wake = { mac = "52:54:00:7a:0b:01"; address = "192.168.1.255"; };
          };
        }
      '';
      description = "Backup boxes, by name.";
    };

    jobs = mkOption {
      type = types.attrsOf (types.submodule jobModule);
      default = { };
      example = literalExpression ''
        {
          offsite = {
            host = "box";
            datasets = [ { source = "tank/home"; target = "backup/hozo/home"; recursive = true; } ];
            schedule = "*-*-* 02:30:00";
            snapshots.policy = { hourly = 24; daily = 14; monthly = 6; };
          };
        }
      '';
      description = "Replication jobs, by name. Each becomes `hozo-<name>.service` and `hozo-<name>.timer`.";
    };

    settings = mkOption {
      type = jsonFormat.type;
      default = { };
      description = ''
        Escape hatch: merged over the generated {file}`${configPath}` (attribute sets are merged
        recursively, lists such as `jobs` are replaced whole). The result must still pass
        `hozo config check`.
      '';
    };

    renderedConfig = mkOption {
      type = jsonFormat.type;
      readOnly = true;
      internal = true;
      description = "The attributes written to /etc/hozo/config.json (for inspection and tests).";
    };

    renderedJobConfigs = mkOption {
      type = types.attrsOf jsonFormat.type;
      readOnly = true;
      internal = true;
      description = "The attributes written to /etc/hozo/jobs/<job>.json (for inspection and tests).";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      services.hozo.controller.renderedConfig = rendered;
      services.hozo.controller.renderedJobConfigs = renderedJobConfigs;

      assertions =
        concatLists (
          mapAttrsToList (jn: j: [
            {
              assertion = validName jn;
              message = "services.hozo.controller.jobs.\"${jn}\": a job name becomes the unit name hozo-${jn}.service; use letters, digits, _ . - (starting with a letter or digit).";
            }
            {
              assertion = j.host == "local" || cfg.hosts ? ${j.host};
              message = "services.hozo.controller.jobs.${jn}.host = \"${j.host}\" is not a configured host: define services.hozo.controller.hosts.${j.host} or use one of: ${
                concatStringsSep ", " (map (n: "\"${n}\"") (knownHostNames ++ [ "local" ]))
              }.";
            }
            {
              assertion = lib.trim j.schedule != "";
              message = "services.hozo.controller.jobs.${jn}.schedule is empty: give a systemd calendar expression such as \"daily\" or \"*-*-* 02:30:00\" (see systemd.time(7)).";
            }
            {
              assertion = j.datasets != [ ];
              message = "services.hozo.controller.jobs.${jn}.datasets is empty: add at least one { source = \"pool/dataset\"; target = \"backup/...\"; }.";
            }
          ]) cfg.jobs
        )
        ++ concatLists (
          mapAttrsToList (hn: h: [
            {
              assertion = validName hn;
              message = "services.hozo.controller.hosts.\"${hn}\": a host name is used in credential and metric names; use letters, digits, _ . - (starting with a letter or digit).";
            }
            {
              assertion = !isStorePath h.sshKeyFile;
              message = "services.hozo.controller.hosts.${hn}.sshKeyFile = \"${toString h.sshKeyFile}\" is in the Nix store, where every local user can read it. Keep the key outside the store, e.g. sshKeyFile = config.sops.secrets.\"hozo/${hn}-ssh-key\".path, or a string path such as \"/var/lib/hozo-secrets/${hn}\" (a quoted string is not copied to the store).";
            }
            {
              assertion = h.hostPublicKey != null || h.knownHostsFile != null;
              message = "services.hozo.controller.hosts.${hn}: set hostPublicKey to the box's SSH host key (the contents of /etc/ssh/ssh_host_ed25519_key.pub on the box) or knownHostsFile; Hōzō never turns host key checking off.";
            }
          ]) cfg.hosts
        )
        ++ map (k: {
          assertion = false;
          message = "services.hozo.controller: two datasets replicate into the same target ${k}: ${
            concatStringsSep " and " (map (u: u.what) (filter (u: u.key == k) targetUses))
          }. Give each one its own target.";
        }) duplicateTargets
        # Keys given through `settings` rather than `hosts`.
        ++ mapAttrsToList (hn: h: {
          assertion = !isStorePath (h.sshKeyFile or null);
          message = "services.hozo.controller.settings.hosts.${hn}.sshKeyFile = \"${toString (h.sshKeyFile or "")}\" is in the Nix store, where every local user can read it; keep the key outside the store (e.g. a sops-nix secret path).";
        }) (filterAttrs (hn: _: !(cfg.hosts ? ${hn})) renderedHosts)
        ++ [
          {
            assertion = logDir == null || !(builtins.elem logDir sharedDirs);
            message = "services.hozo.controller.logFile = \"${toString cfg.logFile}\": the module gives the file's directory to the service user, so put the file in a directory of its own, e.g. \"/var/log/hozo/hozo.log\".";
          }
          {
            assertion = hasPrefix "/" cfg.stateDirectory;
            message = "services.hozo.controller.stateDirectory must be an absolute path.";
          }
        ];

      users.users = mkIf (cfg.user == "hozo") {
        hozo = {
          isSystemUser = true;
          group = cfg.group;
          home = cfg.stateDirectory;
          description = "Hōzō ZFS replication";
        };
      };
      users.groups = mkIf (cfg.group == "hozo") { hozo = { }; };

      environment.systemPackages = [ cfg.package ];

      environment.etc =
        {
          "hozo/config.json".source = configFile;
        }
        // mapAttrs' (
          name: file: nameValuePair "hozo/jobs/${name}.json" { source = file; }
        ) jobConfigFiles;

      system.checks = optional (cfg.checkConfig && canCheck) checkedConfig;

      programs.ssh.knownHosts = mapAttrs' (
        name: h:
        nameValuePair "hozo-${name}" {
          hostNames = [ (if h.port == 22 then h.address else "[${h.address}]:${toString h.port}") ];
          publicKey = h.hostPublicKey;
        }
      ) (filterAttrs (_: h: h.hostPublicKey != null) cfg.hosts);

      systemd.tmpfiles.settings."10-hozo" =
        optionalAttrs (!stateUnderVarLib) {
          ${cfg.stateDirectory}.d = {
            user = cfg.user;
            group = cfg.group;
            mode = "0750";
          };
        }
        // optionalAttrs (cfg.metrics.textfileDirectory != null) {
          ${cfg.metrics.textfileDirectory}.d = {
            user = cfg.user;
            group = cfg.group;
            mode = "0755";
          };
        }
        // optionalAttrs (logDir != null) {
          ${logDir}.d = {
            user = cfg.user;
            group = cfg.group;
            mode = "0750";
          };
        };

      services.logrotate.settings = mkIf (cfg.logFile != null) {
        hozo = {
          files = [ cfg.logFile ];
          frequency = "daily";
          rotate = 14;
          compress = true;
          delaycompress = true;
          missingok = true;
          notifempty = true;
          su = "${cfg.user} ${cfg.group}";
          create = "0640 ${cfg.user} ${cfg.group}";
        };
      };

      services.prometheus.exporters.node.extraFlags = mkIf wireNodeExporter [
        "--collector.textfile.directory=${cfg.metrics.textfileDirectory}"
      ];

      systemd.services = mapAttrs' (
        name: j:
        let
          host = j.host;
          key = keyOf host;
        in
        nameValuePair (unitName name) (mkMerge [
          {
            description = "Hōzō replication job ${name}";
            after = [
              "network-online.target"
              "zfs.target"
            ]
            ++ optional delegate "hozo-zfs-delegation.service";
            wants = [ "network-online.target" ] ++ optional delegate "hozo-zfs-delegation.service";
            # A run must not be killed by nixos-rebuild switch; the next run picks up the new config.
            restartIfChanged = false;
            # The ZFS userland matching the running kernel module (the package wrapper adds ssh, mbuffer, pv, zstd).
            path = [ config.boot.zfs.package ];
            environment.HOZO_CONFIG = jobConfigPath name;
            startLimitBurst = j.restartAttempts + 1;
            startLimitIntervalSec = 6 * 3600;
            serviceConfig =
              hardening
              // {
                Type = "oneshot";
                User = cfg.user;
                Group = cfg.group;
                ExecStart = "${lib.getExe' cfg.package "hozo"} run ${escapeShellArg name}";
                TimeoutStartSec = j.timeout;
                # Exit 1 (a dataset failed) and 3 (host unreachable) are worth another try; 2 (config) is not.
                Restart = "on-failure";
                RestartSec = j.restartDelay;
                RestartPreventExitStatus = [ "2" ];
                ReadWritePaths = rwPaths;
              }
              // optionalAttrs stateUnderVarLib {
                StateDirectory = lib.removePrefix "/var/lib/" cfg.stateDirectory;
                StateDirectoryMode = "0750";
              }
              // optionalAttrs (key != null) {
                LoadCredential = [ "ssh-key-${host}:${key}" ];
              }
              // optionalAttrs (cfg.user == "root") {
                # Without delegation ZFS checks CAP_SYS_ADMIN, even for root.
                CapabilityBoundingSet = [ "CAP_SYS_ADMIN" ];
              };
          }
          j.service
        ])
      ) cfg.jobs;

      systemd.timers = mapAttrs' (
        name: j:
        nameValuePair (unitName name) {
          description = "Schedule of Hōzō replication job ${name}";
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnCalendar = j.schedule;
            Persistent = j.persistent;
            RandomizedDelaySec = j.randomizedDelaySec;
          };
        }
      ) cfg.jobs;
    }

    (mkIf delegate {
      # One standing delegation for all jobs: they share one user, so the per-run
      # allow/unallow of syncoid's module would let one job's cleanup cut off another's run.
      # Stopping this unit (module disabled, datasets changed, shutdown) removes the permissions.
      systemd.services.hozo-zfs-delegation = {
        description = "ZFS permissions for Hōzō's service user";
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
          allow() { # allow PERMS DATASET [FALLBACK-PARENT]
            local ds=$2
            if ! ${zfs} list -H -o name "$ds" >/dev/null 2>&1 && [ -n "''${3-}" ]; then
              ds=$3
            fi
            if ${zfs} list -H -o name "$ds" >/dev/null 2>&1; then
              ${zfs} allow -u ${escapeShellArg cfg.user} "$1" "$ds"
            else
              echo "hozo: dataset $2 does not exist (is its pool imported?); not delegating $1 on it" >&2
              status=1
            fi
          }
          ${concatMapStringsSep "\n" (
            ds: "allow ${escapeShellArgs [ (perms cfg.zfsPermissions) ds ]}"
          ) sourceDatasets}
          ${concatMapStringsSep "\n" (
            ds: "allow ${escapeShellArgs [ (perms cfg.localTargetPermissions) ds (dirOf ds) ]}"
          ) localTargets}
          exit $status
        '';
        preStop = ''
          ${concatMapStringsSep "\n" (
            ds: "${zfs} unallow -u ${escapeShellArgs [ cfg.user (perms cfg.zfsPermissions) ds ]} || true"
          ) sourceDatasets}
          ${concatMapStringsSep "\n" (
            ds:
            "${zfs} unallow -u ${escapeShellArgs [ cfg.user (perms cfg.localTargetPermissions) ds ]} || true\n"
            + "${zfs} unallow -u ${escapeShellArgs [ cfg.user (perms cfg.localTargetPermissions) (dirOf ds) ]} || true"
          ) localTargets}
        '';
      };
    })

    (
      let
        withPolicy = filterAttrs (_: j: j.snapshots.policy != null) cfg.jobs;
      in
      mkIf (withPolicy != { }) {
        services.sanoid = {
          enable = mkDefault true;
          templates = mapAttrs' (
            name: j:
            nameValuePair "hozo-${name}" (
              mapAttrs (_: mkDefault) {
                inherit (j.snapshots.policy)
                  hourly
                  daily
                  monthly
                  yearly
                  ;
                autosnap = true;
                autoprune = true;
              }
            )
          ) withPolicy;
          datasets = mkMerge (
            concatLists (
              mapAttrsToList (
                name: j:
                concatMap (
                  d:
                  [
                    {
                      ${d.source} = {
                        use_template = mkDefault [ "hozo-${name}" ];
                        recursive = mkDefault d.recursive;
                      };
                    }
                  ]
                  # An excluded child of a recursive source gets no snapshots of its own.
                  ++ map (e: { ${e}.autosnap = mkDefault false; }) d.exclude
                ) j.datasets
              ) withPolicy
            )
          );
        };
      }
    )
  ]);

}
