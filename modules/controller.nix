# services.hozo.controller: replicate local ZFS datasets to a (sleeping) backup box.
#
# A plain NixOS module: import it directly, or through the flake's nixosModules.controller,
# which only adds a default for `package`. It renders the binary's config (src/config/schema.ts
# is the contract), one hozo-<job>.service + .timer per job, ZFS delegation for the service user,
# sanoid snapshot policy, logrotate and node-exporter wiring. Secrets (SSH keys, notify tokens)
# reach the units with LoadCredential=. The wake/lease/shutdown protocol with the box's agent is the
# binary's business: the units only run `hozo run <job>`.
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
  # Where systemd's LoadCredential= puts credential `id` for this job's unit.
  credentialPath = job: id: "/run/credentials/${unitName job}.service/${id}";

  # Names that become unit names and credential names (the binary's NAME rule).
  validName = n: builtins.match "[A-Za-z0-9][A-Za-z0-9_.-]*" n != null;
  isStorePath = p: p != null && hasPrefix "${builtins.storeDir}/" (toString p);
  dropNulls = filterAttrs (_: v: v != null);

  inherit (import ./controller/types.nix { inherit lib; })
    durationType
    bandwidthType
    bandwidthOption
    hookModule
    hookOption
    hookOptions
    renderHooks
    datasetModule
    wakeModule
    hostModule
    notifyModule
    policyModule
    jobModule
    ;

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
        agent
        shutdownCommand
        shutdownIfAwake
        pools
        leaseTtl
        trust
        bandwidthLimit
        scrubWarnAfter
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
              packets
              relayHost
              command
              url
              httpMethod
              ;
          };
    };

  # The fields each channel type takes (the schema is strict per type, src/notify/schema.ts).
  notifyFields = {
    ntfy = [
      "url"
      "tokenFile"
    ];
    pushover = [
      "userFile"
      "tokenFile"
      "apiUrl"
    ];
    email = [
      "to"
      "from"
      "sendmail"
    ];
    webhook = [
      "url"
      "tokenFile"
    ];
  };
  # Optional fields (null = unset) that a channel of another type would silently lose.
  notifyOptionalFields = [
    "url"
    "tokenFile"
    "userFile"
    "apiUrl"
    "to"
    "from"
  ];
  renderChannel =
    c:
    dropNulls (
      {
        inherit (c) type on timeout;
      }
      // lib.getAttrs notifyFields.${c.type} c
    );

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
      bufferSize
      compress
      ;
    snapshots = j.snapshots.send;
  }
  // lib.optionalAttrs (j.bandwidthLimit != null) { inherit (j) bandwidthLimit; }
  // lib.optionalAttrs (j.window.maxAwake != null) { window = { inherit (j.window) maxAwake; }; }
  // lib.optionalAttrs j.snapshots.own.enable {
    snapshot = dropNulls {
      create = true;
      inherit (j.snapshots.own) prefix keep;
    };
  }
  // lib.optionalAttrs (renderHooks j.hooks != null) { hooks = renderHooks j.hooks; }
  // {
    datasets = map (
      d:
      {
        inherit (d)
          source
          target
          recursive
          exclude
          allowPlaintext
          ;
      }
      // lib.optionalAttrs (renderHooks d.hooks != null) { hooks = renderHooks d.hooks; }
    ) j.datasets;
  };

  generated = dropNulls {
    inherit (cfg) stateDirectory logFile;
    metrics =
      if cfg.metrics.textfileDirectory == null then
        null
      else
        { inherit (cfg.metrics) textfileDirectory; };
    notify = if cfg.notify == [ ] then null else map renderChannel cfg.notify;
    hosts = mapAttrs renderHost cfg.hosts;
    jobs = mapAttrsToList renderJob cfg.jobs;
  };

  # settings is merged over the generated attrs (lists, like `jobs` or `notify`, are replaced whole).
  rendered = lib.recursiveUpdate generated cfg.settings;
  renderedHosts = rendered.hosts or { };
  renderedJobs = rendered.jobs or [ ];
  renderedNotify = rendered.notify or [ ];

  hostOfJob = name: (cfg.jobs.${name} or { host = null; }).host;
  keyOf = host: (renderedHosts.${host} or { }).sshKeyFile or null;
  relayOf = host: ((renderedHosts.${host} or { }).wake or { }).relayHost or null;
  # The hosts one job talks to: its box and, for method = "ssh-relay", the relay that wakes it.
  hostsOfJob =
    name:
    let
      host = hostOfJob name;
    in
    filter (h: h != null && renderedHosts ? ${h}) (unique [
      host
      (relayOf host)
    ]);

  # Secret files of the notify channels, each passed to the job units as a credential.
  notifySecrets = concatLists (
    lib.imap0 (
      i: c:
      concatMap (
        field:
        optional (c ? ${field}) {
          inherit field;
          index = i;
          id = "notify-${toString i}-${lib.removeSuffix "File" field}";
          path = c.${field};
        }
      ) [
        "tokenFile"
        "userFile"
      ]
    ) renderedNotify
  );

  # LoadCredential= of one job's unit: the SSH keys of its hosts and the notify secrets.
  credentialsOf =
    name:
    map (h: "ssh-key-${h}:${keyOf h}") (filter (h: keyOf h != null) (hostsOfJob name))
    ++ map (s: "${s.id}:${s.path}") notifySecrets;

  # The config one job's unit reads: its job, its hosts, and every secret path pointing where
  # LoadCredential put the copy.
  renderJobConfig =
    name:
    rendered
    // {
      hosts = lib.genAttrs (hostsOfJob name) (
        h:
        let
          a = renderedHosts.${h};
        in
        a // optionalAttrs (a ? sshKeyFile) { sshKeyFile = credentialPath name "ssh-key-${h}"; }
      );
      jobs = filter (j: j.name or null == name) renderedJobs;
    }
    // optionalAttrs (rendered ? notify) {
      notify = lib.imap0 (
        i: c:
        c
        // lib.listToAttrs (
          map (s: nameValuePair s.field (credentialPath name s.id)) (filter (s: s.index == i) notifySecrets)
        )
      ) renderedNotify;
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
  # For the job units: the booted system's zfs (it matches the loaded kernel module), else the configured one.
  zfsPath = [
    "/run/booted-system/sw"
    config.boot.zfs.package
  ];
  allJobs = attrValues cfg.jobs;
  sourceDatasets = unique (concatMap (j: map (d: d.source) j.datasets) allJobs);
  localTargets = unique (
    concatMap (j: optionals (j.host == "local") (map (d: d.target) j.datasets)) allJobs
  );
  # Sources of jobs that take their own snapshots: `snapshot` (it needs `mount` too) and, to prune them, `destroy`
  # (zfs-allow(8) has no snapshot-only destroy: it reaches the dataset as well, so only these sources get it).
  ownSnapshotSources = unique (
    concatMap (j: optionals j.snapshots.own.enable (map (d: d.source) j.datasets)) allJobs
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

  # Wake settings the schema accepts but that cannot work, caught with a message naming the option.
  wakeAssertions =
    hn: w:
    let
      opt = "services.hozo.controller.hosts.${hn}.wake";
    in
    optionals (w.method == "wol") [
      {
        assertion = w.mac != null && w.address != null;
        message = "${opt}: method = \"wol\" needs mac (the box's NIC) and address (the broadcast address of the box's LAN, e.g. \"192.168.1.255\"); hozo never guesses one.";
      }
      {
        assertion = w.address != "255.255.255.255";
        message = "${opt}.address = \"255.255.255.255\": hozo refuses the limited broadcast (it leaves through whichever interface the route picks); give the broadcast address of the box's LAN, e.g. \"192.168.1.255\".";
      }
    ]
    ++ optionals (w.method == "ssh-relay") [
      {
        assertion = w.relayHost != null && w.relayHost != hn && cfg.hosts ? ${w.relayHost};
        message = "${opt}: method = \"ssh-relay\" needs relayHost, the name of another entry of services.hozo.controller.hosts (the always-on machine at the box's site); got ${
          if w.relayHost == null then "none" else "\"${w.relayHost}\""
        }.";
      }
      {
        assertion = w.command != null || (w.mac != null && w.address != null);
        message = "${opt}: method = \"ssh-relay\" without command runs `wakeonlan -i <address> <mac>` on the relay: set mac and address, or command.";
      }
    ]
    ++ optional (w.method == "http") {
      assertion = w.url != null;
      message = "${opt}: method = \"http\" needs url.";
    }
    ++ optional (w.method == "command") {
      assertion = w.command != null && w.command != [ ];
      message = "${opt}: method = \"command\" needs command, an argument vector such as [ \"/run/current-system/sw/bin/my-wake-script\" ].";
    };

  notifyRequired = {
    ntfy = [ "url" ];
    pushover = [
      "userFile"
      "tokenFile"
    ];
    email = [ "to" ];
    webhook = [ "url" ];
  };
  notifyAssertions =
    i: c:
    let
      opt = "services.hozo.controller.notify (entry ${toString i}, type = \"${c.type}\")";
      missing = filter (f: c.${f} == null) notifyRequired.${c.type};
      foreign = filter (f: c.${f} != null && !(builtins.elem f notifyFields.${c.type})) notifyOptionalFields;
    in
    [
      {
        assertion = missing == [ ];
        message = "${opt}: set ${concatStringsSep " and " missing}.";
      }
      {
        assertion = foreign == [ ];
        message = "${opt}: ${concatStringsSep ", " foreign} ${
          if builtins.length foreign == 1 then "is" else "are"
        } not used by this type (it takes ${concatStringsSep ", " notifyFields.${c.type}}).";
      }
    ];

  stateUnderVarLib = hasPrefix "/var/lib/" cfg.stateDirectory;
  rwPaths =
    optional (!stateUnderVarLib) cfg.stateDirectory
    ++ optional (cfg.metrics.textfileDirectory != null) cfg.metrics.textfileDirectory
    ++ optional (logDir != null) logDir;

  # What a job's units share (`hozo run` and `hozo verify`): ordering after the network, ZFS and the delegation, the
  # ZFS tools, the job's config, the state directory, its credentials, the hardening. `extra.serviceConfig` is
  # merged over it.
  jobUnit =
    name: j: extra:
    let
      credentials = credentialsOf name;
    in
    {
      after = [
        "network-online.target"
        "zfs.target"
      ]
      ++ optional delegate "hozo-zfs-delegation.service";
      wants = [ "network-online.target" ] ++ optional delegate "hozo-zfs-delegation.service";
      # A run must not be killed by nixos-rebuild switch; the next run picks up the new config.
      restartIfChanged = false;
      # The ZFS userland matching the running kernel module: the booted system's first (after a switch that
      # upgraded ZFS, config.boot.zfs.package is the new userland while the old module stays loaded until the
      # reboot), then the configured one. The package wrapper adds ssh, mbuffer, pv, zstd in front.
      path = zfsPath;
      environment.HOZO_CONFIG = jobConfigPath name;
    }
    // removeAttrs extra [ "serviceConfig" ]
    // {
      serviceConfig =
        hardening
        // {
          Type = "oneshot";
          TimeoutStartSec = j.timeout;
          ReadWritePaths = rwPaths;
        }
        // optionalAttrs stateUnderVarLib {
          StateDirectory = lib.removePrefix "/var/lib/" cfg.stateDirectory;
          StateDirectoryMode = "0750";
        }
        // optionalAttrs (credentials != [ ]) {
          # SSH keys and notify tokens: systemd reads them as root and hands the unit a copy.
          LoadCredential = credentials;
        }
        // extra.serviceConfig;
    };

  hardening = import ./hardening.nix // {
    ProcSubset = "all";
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
      # What the jobs (user hozo) run on a source, and the permission each needs (zfs-allow(8); the
      # kernel checks them in zfs_secpolicy_*). The same list as src/zfs/delegation.ts, which the
      # OpenZFS suite proves complete and minimal (tests/openzfs/delegation.test.ts).
      default = [
        # `zfs send`: full, incremental, resumed (-t). (The `-n -P` estimate worked without it.)
        "send"
        # `zfs hold hozo:<job>` on the verified base; `zfs send -I` also puts temporary holds on
        # what it sends, so without it every incremental with intermediates fails.
        "hold"
        # Moving that hold: `zfs release` of the previous base.
        "release"
        # `zfs bookmark` of the base, so the next incremental survives the snapshot being pruned.
        # Not `destroy` (it would reach the data too): the job's older bookmarks stay.
        "bookmark"
      ];
      description = ''
        Permissions delegated to `user` on source datasets ({manpage}`zfs-allow(8)`). The default
        is what the jobs need; see the comments in {file}`modules/controller.nix` for why each is there.
      '';
    };

    ownSnapshotPermissions = mkOption {
      type = types.listOf types.str;
      # The same list as OWN_SNAPSHOT_PERMISSIONS in src/zfs/delegation.ts.
      default = [
        # `zfs snapshot` of the job's sources (snapshots.own); the kernel wants `mount` with it.
        "snapshot"
        "mount"
        # Pruning the job's own snapshots beyond `keep`.
        "destroy"
      ];
      description = "Permissions delegated to `user`, in addition to `zfsPermissions`, on the sources of jobs with `snapshots.own.enable`.";
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

    notify = mkOption {
      type = types.listOf (types.submodule notifyModule);
      default = [ ];
      example = literalExpression ''
        [
          { type = "ntfy"; url = "https://ntfy.sh/my-backups-3f9c"; tokenFile = config.sops.secrets."hozo/ntfy-token".path; }
          { type = "email"; to = "admin@example.org"; on = "always"; }
        ]
      '';
      description = ''
        Where to report runs: `ntfy`, `pushover`, `email` or `webhook` channels (the binary's
        top-level `notify`). Secrets are files outside the Nix store (`tokenFile`, `userFile`);
        each job unit gets them through `LoadCredential=` and its config names the copies. A failed
        notification never fails the run.
      '';
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
      description = "Backup boxes (and the relays that wake them, `wake.method = \"ssh-relay\"`), by name.";
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

      assertions = [
        {
          assertion = config.boot.zfs.enabled;
          message = "services.hozo.controller needs ZFS on this host: set boot.supportedFilesystems = [ \"zfs\" ]; (and networking.hostId).";
        }
      ]
      ++ concatLists (
          mapAttrsToList (jn: j: [
            {
              assertion = validName jn;
              message = "services.hozo.controller.jobs.\"${jn}\": a job name becomes the unit name hozo-${jn}.service; use letters, digits, _ . - (starting with a letter or digit).";
            }
            {
              # hozo-<job>.service must not be one of the module's other units.
              assertion =
                jn != "zfs-delegation"
                && !(lib.any (other: cfg.jobs.${other}.verify.schedule != null && jn == "verify-${other}") (lib.attrNames cfg.jobs));
              message = "services.hozo.controller.jobs.\"${jn}\": its unit hozo-${jn}.service is also one of the module's own (${
                if jn == "zfs-delegation" then "the ZFS delegation unit" else "the verify unit of job ${lib.removePrefix "verify-" jn}"
              }); give the job another name.";
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
          ]
          ++ optionals (h.wake != null) (wakeAssertions hn h.wake)) cfg.hosts
        )
        ++ concatLists (lib.imap0 notifyAssertions cfg.notify)
        # Secret files of the rendered channels (typed options or `settings.notify`).
        ++ map (s: {
          assertion = !isStorePath s.path;
          message = "services.hozo.controller.notify (entry ${toString s.index}): ${s.field} = \"${s.path}\" is in the Nix store, where every local user can read it. Keep the secret outside the store, e.g. ${s.field} = config.sops.secrets.\"hozo/notify-token\".path.";
        }) notifySecrets
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
        nameValuePair (unitName name) (mkMerge [
          (jobUnit name j {
            description = "Hōzō replication job ${name}";
            serviceConfig = {
              User = cfg.user;
              Group = cfg.group;
              # Exit 1 (a dataset failed) and 3 (host unreachable) are tried again by hozo itself, after
              # --attempt-delay, within TimeoutStartSec; 2 (config) and 4 (already running) are not.
              # No Restart=/StartLimitBurst=: those count manual starts too.
              ExecStart = escapeShellArgs [
                (lib.getExe' cfg.package "hozo")
                "run"
                name
                "--attempts"
                (toString (j.restartAttempts + 1))
                "--attempt-delay"
                (toString j.restartDelay)
              ];
            }
            // optionalAttrs (cfg.user == "root") {
              # Without delegation ZFS checks CAP_SYS_ADMIN, even for root.
              CapabilityBoundingSet = [ "CAP_SYS_ADMIN" ];
            };
          })
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

    # `hozo verify` on a timer, per job that asks for it (jobs.<name>.verify.schedule).
    {
      systemd.services = mapAttrs' (
        name: j:
        let
          v = j.verify;
        in
        nameValuePair "hozo-verify-${name}" (jobUnit name j {
          description = "Hōzō verification of job ${name}";
          serviceConfig = {
            User = if v.restoreTest then "root" else cfg.user;
            Group = if v.restoreTest then "root" else cfg.group;
            ExecStart = escapeShellArgs (
              [
                (lib.getExe' cfg.package "hozo")
                "verify"
                name
              ]
              ++ optional v.restoreTest "--restore-test"
              ++ optionals (v.datasets != null) [
                "--datasets"
                (toString v.datasets)
              ]
              ++ optionals (v.files != null) [
                "--files"
                (toString v.files)
              ]
            );
          }
          // optionalAttrs v.restoreTest {
            # Mounting the restored copy and its source's clone (in this unit's own mount namespace:
            # PrivateMounts), and reading every file of them whatever its owner and mode.
            CapabilityBoundingSet = [
              "CAP_SYS_ADMIN"
              "CAP_DAC_READ_SEARCH"
            ];
            SystemCallFilter = hardening.SystemCallFilter ++ [ "@mount" ];
          }
          // optionalAttrs (!v.restoreTest && cfg.user == "root") {
            CapabilityBoundingSet = [ "CAP_SYS_ADMIN" ];
          };
        })
      ) (lib.filterAttrs (_: j: j.verify.schedule != null) cfg.jobs);
      systemd.timers = mapAttrs' (
        name: j:
        nameValuePair "hozo-verify-${name}" {
          description = "Schedule of Hōzō verification of job ${name}";
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnCalendar = j.verify.schedule;
            Persistent = true;
            RandomizedDelaySec = "1h";
          };
        }
      ) (lib.filterAttrs (_: j: j.verify.schedule != null) cfg.jobs);
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
              # A failure is counted, not fatal (the script runs under -e): the other datasets still get theirs.
              ${zfs} allow -u ${escapeShellArg cfg.user} "$1" "$ds" || {
                echo "hozo: zfs allow $1 on $ds failed" >&2
                status=1
              }
            else
              echo "hozo: dataset $2 does not exist (is its pool imported?); not delegating $1 on it" >&2
              status=1
            fi
          }
          ${concatMapStringsSep "\n" (
            ds: "allow ${escapeShellArgs [ (perms cfg.zfsPermissions) ds ]}"
          ) sourceDatasets}
          ${concatMapStringsSep "\n" (
            ds: "allow ${escapeShellArgs [ (perms cfg.ownSnapshotPermissions) ds ]}"
          ) ownSnapshotSources}
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
            ds: "${zfs} unallow -u ${escapeShellArgs [ cfg.user (perms cfg.ownSnapshotPermissions) ds ]} || true"
          ) ownSnapshotSources}
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
