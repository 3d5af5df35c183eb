# Stand-ins for the parts of NixOS and Nixpkgs that modules/{controller,agent}.nix touch, so the
# modules can be evaluated with nothing but nixpkgs' lib (lib.evalModules). Each option the modules
# use is declared with the type, default and check NixOS 25.11 gives it (the nixpkgs file is named
# above each group), so a wrong use fails here as it fails on a real system; where NixOS checks with
# an assertion or a unit-config check, the stub has an equivalent one. Only what the modules (and
# the tests' wrong uses) reach is declared, and nothing is built. Written for these tests, not taken
# from NixOS.
{ lib }:

let
  inherit (lib)
    mkDefault
    mkIf
    mkMerge
    mkOption
    types
    ;

  stubDrv =
    name: attrs:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
      meta = { };
    }
    // attrs;

  jsonValue =
    let
      valueType =
        types.nullOr (
          types.oneOf [
            types.bool
            types.int
            types.float
            types.str
            types.path
            (types.attrsOf valueType)
            (types.listOf valueType)
          ]
        )
        // {
          description = "JSON value";
        };
    in
    valueType;

  opt = type: default: mkOption { inherit type default; };
  bool = opt types.bool;
  str = opt types.str;
  lines = opt types.lines "";
  strList = opt (types.listOf types.str) [ ];

  ## systemd units: nixos/lib/systemd-lib.nix, systemd-unit-options.nix, systemd-types.nix

  # What `after`, `wants`, `wantedBy`, … take: a unit name with one of systemd's unit suffixes.
  unitName = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";
  unitNames = opt (types.listOf unitName) [ ];

  # A value of serviceConfig/unitConfig/timerConfig. No check (any value is taken as it is). When one
  # of the definitions is a list the values are repeated directives: every definition becomes a list
  # and they are concatenated (a lone string joins the list); otherwise the definitions must agree.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      if lib.any (d: builtins.isList d.value) defs then
        lib.concatMap (d: lib.toList d.value) defs
      else
        lib.mergeEqualOption loc defs;
  };
  unitSection = opt (types.attrsOf unitOption) { };

  # serviceConfig's check (checkUnitConfig with assertValueOneOf in NixOS): Type= and Restart= only
  # take the values systemd knows. A value under mkIf/mkOverride is looked at through that wrapper;
  # a bad one is traced and makes the definition "not of type", failing the evaluation.
  serviceValues = {
    Type = [
      "exec"
      "simple"
      "forking"
      "oneshot"
      "dbus"
      "notify"
      "notify-reload"
      "idle"
    ];
    Restart = [
      "no"
      "on-success"
      "on-failure"
      "on-abnormal"
      "on-abort"
      "always"
    ];
  };
  serviceSectionOk =
    section:
    let
      bare = v: if builtins.elem (v._type or null) [ "if" "override" ] then v.content else v;
      refused = lib.filter (key: section ? ${key} && !builtins.elem (bare section.${key}) serviceValues.${key}) (
        lib.attrNames serviceValues
      );
      why = map (key: "Systemd Service field `${key}' cannot have value `${toString (bare section.${key})}'.") refused;
    in
    refused == [ ] || builtins.trace (lib.concatStringsSep "\n" why) false;

  # The dependency lists: each one becomes its [Unit] directive (After=, BindsTo=, …) in unitConfig.
  dependencyLists = [
    "requires"
    "wants"
    "upholds"
    "after"
    "before"
    "bindsTo"
    "partOf"
    "conflicts"
    "requisite"
    "onFailure"
    "onSuccess"
  ];
  directive = o: lib.toUpper (builtins.substring 0 1 o) + builtins.substring 1 (-1) o;

  # What every unit kind shares (the unit's [Unit] section and its install lists).
  commonUnit =
    suffix:
    { name, config, options, ... }:
    {
      options =
        lib.genAttrs (
          dependencyLists
          ++ [
            "wantedBy"
            "requiredBy"
            "upheldBy"
            "aliases"
          ]
        ) (_: unitNames)
        // {
          name = mkOption { type = types.str; };
          enable = bool true;
          description = opt types.singleLineStr "";
          documentation = strList;
          unitConfig = unitSection;
          # No default: unset means no StartLimit*= line at all.
          startLimitBurst = mkOption { type = types.int; };
          startLimitIntervalSec = mkOption { type = types.int; };
        };
      config = {
        name = "${name}.${suffix}";
        unitConfig =
          lib.listToAttrs (
            map (o: lib.nameValuePair (directive o) (toString config.${o})) (
              lib.filter (o: config.${o} != [ ]) (dependencyLists ++ [ "documentation" ])
            )
          )
          // lib.optionalAttrs (config.description != "") { Description = config.description; }
          // lib.optionalAttrs options.startLimitBurst.isDefined { StartLimitBurst = toString config.startLimitBurst; }
          // lib.optionalAttrs options.startLimitIntervalSec.isDefined {
            StartLimitIntervalSec = toString config.startLimitIntervalSec;
          };
      };
    };

  # A unit script as NixOS makes it (a store path `…/bin/<name>`), without building it.
  jobScript =
    name: text:
    let
      file = lib.replaceStrings [ "\\" "@" ] [ "-" "_" ] name;
    in
    "${stubDrv "unit-script-${file}" { inherit text; }}/bin/${file}";

  serviceModule =
    { name, config, ... }:
    {
      imports = [ (commonUnit "service") ];
      options = {
        environment = opt (types.attrsOf (
          types.nullOr (
            types.oneOf [
              types.str
              types.path
              types.package
            ]
          )
        )) { };
        path = opt (types.listOf (
          types.oneOf [
            types.package
            types.str
          ]
        )) [ ];
        serviceConfig = opt (types.addCheck (types.attrsOf unitOption) serviceSectionOk) { };
        script = lines;
        scriptArgs = str "";
        preStart = lines;
        postStart = lines;
        reload = lines;
        preStop = lines;
        postStop = lines;
        restartIfChanged = bool true;
        reloadIfChanged = bool false;
        stopIfChanged = bool true;
      };
      # The scripts become Exec*= lines: a unit with `script` that also sets ExecStart= conflicts.
      config.serviceConfig = mkMerge [
        (mkIf (config.preStart != "") { ExecStartPre = [ (jobScript "${name}-pre-start" config.preStart) ]; })
        (mkIf (config.script != "") { ExecStart = jobScript "${name}-start" config.script + " " + config.scriptArgs; })
        (mkIf (config.postStart != "") { ExecStartPost = [ (jobScript "${name}-post-start" config.postStart) ]; })
        (mkIf (config.reload != "") { ExecReload = jobScript "${name}-reload" config.reload; })
        (mkIf (config.preStop != "") { ExecStop = jobScript "${name}-pre-stop" config.preStop; })
        (mkIf (config.postStop != "") { ExecStopPost = jobScript "${name}-post-stop" config.postStop; })
      ];
    };

  timerModule = {
    imports = [ (commonUnit "timer") ];
    options.timerConfig = unitSection;
  };

  ## nixos/modules/system/boot/systemd/tmpfiles.nix: settings.<file>.<path>.<type> is an entry whose
  ## fields all have defaults ("-", or the attribute name for `type`).
  tmpfilesEntry = types.submodule (
    { name, ... }:
    {
      options = {
        type = str name;
        mode = str "-";
        user = str "-";
        group = str "-";
        age = str "-";
        argument = str "";
      };
    }
  );

  ## nixos/modules/services/logging/logrotate.nix: a section is a submodule with a few options and
  ## every other directive freeform (an int, a bool or a string; null drops it).
  logrotateSection = types.submodule (
    { name, ... }:
    {
      freeformType = types.attrsOf (
        types.nullOr (
          types.oneOf [
            types.int
            types.bool
            types.str
          ]
        )
      );
      options = {
        enable = bool true;
        files = opt (types.either types.str (types.listOf types.str)) name;
        frequency = opt (types.nullOr types.str) null;
        global = bool false;
        priority = opt types.int 1000;
      };
    }
  );

  ## nixos/modules/services/backup/sanoid.nix: templates and datasets are typed (the retention
  ## counts unsigned, the switches booleans, all null by default) with the rest freeform.
  sanoidFreeform =
    types.attrsOf (
      types.nullOr (
        types.oneOf [
          types.str
          types.int
          types.bool
          (types.listOf types.str)
        ]
      )
    )
    // {
      description = "dataset/template options";
    };
  nullOr = t: opt (types.nullOr t) null;
  sanoidCommon =
    lib.genAttrs [ "hourly" "daily" "monthly" "yearly" ] (_: nullOr types.ints.unsigned)
    // lib.genAttrs [ "autosnap" "autoprune" "no_inconsistent_snapshot" "force_post_snapshot_script" ] (
      _: nullOr types.bool
    )
    // lib.genAttrs [ "pre_snapshot_script" "post_snapshot_script" "pruning_script" ] (_: nullOr types.str)
    // {
      script_timeout = nullOr types.int;
    };

  ## nixos/modules/config/users-groups.nix (+ services/networking/ssh/sshd.nix for the keys)
  passwdStr = types.passwdEntry types.str;
  # Names over 31 characters abort the evaluation (an `apply`, not a type).
  shortName =
    what: x:
    assert (builtins.stringLength x < 32 || abort "${what} '${x}' is longer than 31 characters which is not allowed!");
    x;
  userModule =
    { name, config, ... }:
    {
      options = {
        name = mkOption {
          type = passwdStr;
          apply = shortName "Username";
        };
        enable = bool true;
        isSystemUser = bool false;
        isNormalUser = bool false;
        uid = nullOr types.int;
        group = mkOption {
          type = types.str;
          default = "";
          apply = shortName "Group name";
        };
        extraGroups = strList;
        description = opt passwdStr "";
        home = opt (types.passwdEntry types.path) "/var/empty";
        createHome = bool false;
        useDefaultShell = bool false;
        openssh.authorizedKeys = {
          keys = opt (types.listOf types.singleLineStr) [ ];
          keyFiles = opt (types.listOf types.path) [ ];
        };
      };
      config = mkMerge [
        { name = mkDefault name; }
        (mkIf config.isNormalUser {
          createHome = mkDefault true;
          group = mkDefault "users";
          home = mkDefault "/home/${config.name}";
          isSystemUser = mkDefault false;
          useDefaultShell = mkDefault true;
        })
      ];
    };
  groupModule =
    { name, ... }:
    {
      options = {
        name = mkOption { type = passwdStr; };
        gid = nullOr types.int;
      };
      config.name = mkDefault name;
    };

  ## nixos/modules/programs/ssh.nix: a known host names itself by default; exactly one of publicKey
  ## and publicKeyFile (an assertion below).
  knownHostModule =
    { name, config, ... }:
    {
      options = {
        certAuthority = bool false;
        extraHostNames = strList;
        hostNames = opt (types.listOf types.str) ([ name ] ++ config.extraHostNames);
        publicKey = nullOr types.str;
        publicKeyFile = nullOr types.path;
      };
    };

  ## nixos/modules/system/etc/etc.nix: `source` is a path (a store path, or text written to one).
  etcModule =
    {
      name,
      config,
      options,
      ...
    }:
    {
      options = {
        enable = bool true;
        source = mkOption { type = types.path; };
        text = nullOr types.lines;
        target = mkOption { type = types.str; };
        mode = str "symlink";
        uid = opt types.int 0;
        gid = opt types.int 0;
        user = str "+${toString config.uid}";
        group = str "+${toString config.gid}";
      };
      config = {
        source = mkIf (config.text != null) (
          lib.mkDerivedConfig options.text (text: stubDrv "etc-${lib.replaceStrings [ "/" ] [ "-" ] name}" { inherit text; })
        );
        target = mkDefault name;
      };
    };

  ## nixos/modules/services/monitoring/prometheus/exporters.nix (+ exporters/node.nix)
  nodeExporterModule =
    { config, ... }:
    {
      options = {
        enable = bool false;
        port = opt types.port 9100;
        listenAddress = str "0.0.0.0";
        extraFlags = strList;
        openFirewall = bool false;
        firewallFilter = nullOr types.str;
        firewallRules = nullOr types.lines;
        user = str "node-exporter";
        group = str "node-exporter";
        enabledCollectors = strList;
        disabledCollectors = strList;
      };
      config = mkIf config.openFirewall {
        firewallFilter = mkDefault "-p tcp -m tcp --dport ${toString config.port}";
        firewallRules = mkDefault ''tcp dport ${toString config.port} accept comment "node-exporter"'';
      };
    };

  ## nixos/modules/tasks/network-interfaces.nix
  addressModule = bits: {
    options = {
      address = mkOption { type = types.str; };
      prefixLength = mkOption { type = types.ints.between 0 bits; };
    };
  };
  routeModule = bits: {
    options = (addressModule bits).options // {
      options = opt (types.attrsOf types.str) { };
      type = nullOr (
        types.enum [
          "unicast"
          "local"
          "broadcast"
          "multicast"
        ]
      );
      via = nullOr types.str;
    };
  };
  ipOptions = bits: {
    addresses = opt (types.listOf (types.submodule (addressModule bits))) [ ];
    routes = opt (types.listOf (types.submodule (routeModule bits))) [ ];
  };
  tempAddressType = types.enum [
    "default"
    "disabled"
    "enabled"
  ];
  interfaceModule =
    { name, ... }:
    {
      options = {
        name = mkOption { type = types.str; };
        ipv4 = ipOptions 32;
        ipv6 = ipOptions 128;
        macAddress = nullOr types.str;
        mtu = nullOr types.int;
        useDHCP = nullOr types.bool;
        proxyARP = bool false;
        virtual = bool false;
        virtualOwner = opt (types.nullOr types.str) "root";
        virtualType = opt (types.enum [
          "tun"
          "tap"
        ]) (if lib.hasPrefix "tun" name then "tun" else "tap");
        wakeOnLan = {
          enable = bool false;
          policy = opt (types.listOf (
            types.enum [
              "phy"
              "unicast"
              "multicast"
              "broadcast"
              "arp"
              "magic"
              "secureon"
            ]
          )) [ "magic" ];
        };
      };
      config.name = mkDefault name;
    };

  ## nixos/modules/tasks/filesystems.nix: a list of names is coerced to an attrset of `true`.
  filesystemSet = opt (types.coercedTo (types.listOf types.str) (
    enabled: lib.genAttrs enabled (_: true)
  ) (types.attrsOf types.bool)) { };
in
{
  inherit stubDrv;

  pkgs = {
    hozo = stubDrv "hozo-0.1.0" { };
    mbuffer = stubDrv "mbuffer" { };
    zstd = stubDrv "zstd" { };
    ethtool = stubDrv "ethtool" { };
    formats.json = _: {
      type = jsonValue;
      generate =
        name: value:
        stubDrv name {
          inherit value;
          text = builtins.toJSON value;
        };
    };
    runCommand =
      name: env: script:
      stubDrv name { inherit env script; };
    stdenv = {
      buildPlatform.canExecute = _: true;
      hostPlatform.system = "x86_64-linux";
    };
  };

  # Option declarations for what the modules set or read outside services.hozo, and the NixOS
  # assertions on them.
  module =
    { pkgs, config, ... }:
    let
      users = lib.attrValues config.users.users;
      groupNames = lib.mapAttrsToList (_: g: g.name) config.users.groups;
      interfaces = lib.attrValues config.networking.interfaces;
      isHex = s: builtins.match "[0-9a-fA-F]*" s != null;
      zfsPools = lib.unique (
        map (fs: builtins.head (lib.splitString "/" fs.device)) (
          lib.filter (fs: fs.fsType == "zfs" && fs.device != null) (lib.attrValues config.fileSystems)
        )
        ++ config.boot.zfs.extraPools
      );
    in
    {
      options = {
        assertions = opt (types.listOf types.unspecified) [ ];
        warnings = opt (types.listOf types.str) [ ];

        users.users = opt (types.attrsOf (types.submodule userModule)) { };
        users.groups = opt (types.attrsOf (types.submodule groupModule)) { };

        environment.systemPackages = opt (types.listOf types.package) [ ];
        environment.etc = opt (types.attrsOf (types.submodule etcModule)) { };

        system.checks = opt (types.listOf types.package) [ ];

        programs.ssh.knownHosts = opt (types.attrsOf (types.submodule knownHostModule)) { };

        systemd.package = opt types.package (pkgs.systemdStub or (stubDrv "systemd" { }));
        systemd.services = opt (types.attrsOf (types.submodule serviceModule)) { };
        systemd.timers = opt (types.attrsOf (types.submodule timerModule)) { };
        systemd.tmpfiles.settings = opt (types.attrsOf (types.attrsOf (types.attrsOf tmpfilesEntry))) { };

        services.logrotate = {
          settings = opt (types.attrsOf logrotateSection) { };
          enable = bool (lib.any (s: s.enable) (lib.attrValues config.services.logrotate.settings));
        };
        services.prometheus.exporters = opt (types.submodule {
          options.node = opt (types.submodule nodeExporterModule) { };
        }) { };
        services.sanoid = {
          enable = bool false;
          templates = opt (types.attrsOf (
            types.submodule {
              freeformType = sanoidFreeform;
              options = sanoidCommon;
            }
          )) { };
          datasets = opt (types.attrsOf (
            types.submodule (
              { options, ... }:
              let
                # The names of configured templates only.
                templateNames = types.listOf (
                  types.str
                  // {
                    check = v: types.str.check v && builtins.elem v (lib.attrNames config.services.sanoid.templates);
                    description = "configured template name";
                  }
                );
                useTemplate = opt templateNames [ ];
                childrenOnly = bool false;
              in
              {
                freeformType = sanoidFreeform;
                options = sanoidCommon // {
                  use_template = useTemplate;
                  useTemplate = useTemplate;
                  process_children_only = childrenOnly;
                  processChildrenOnly = childrenOnly;
                  recursive = opt (types.oneOf [
                    types.bool
                    (types.enum [ "zfs" ])
                  ]) false;
                };
                # The camelCase spellings are aliases of the snake_case ones.
                config = {
                  use_template = lib.modules.mkAliasAndWrapDefsWithPriority lib.id options.useTemplate;
                  process_children_only = lib.modules.mkAliasAndWrapDefsWithPriority lib.id options.processChildrenOnly;
                };
              }
            )
          )) { };
        };
        services.openssh.enable = bool false;

        # nixos/modules/tasks/filesystems/zfs.nix
        boot.zfs.package = opt types.package (stubDrv "zfs-user-2.3.4" { });
        boot.zfs.enabled = mkOption {
          readOnly = true;
          type = types.bool;
          default = config.boot.supportedFilesystems.zfs or false || config.boot.initrd.supportedFilesystems.zfs or false;
        };
        boot.zfs.extraPools = strList;
        boot.supportedFilesystems = filesystemSet;
        boot.initrd.supportedFilesystems = filesystemSet;

        fileSystems = opt (types.attrsOf (
          types.submodule {
            options = {
              device = nullOr types.str;
              fsType = str "auto";
            };
          }
        )) { };

        networking.hostId = nullOr types.str;
        networking.enableIPv6 = bool true;
        networking.tempAddresses = opt tempAddressType (if config.networking.enableIPv6 then "default" else "disabled");
        networking.interfaces = opt (types.attrsOf (
          types.submodule [
            interfaceModule
            { options.tempAddress = opt tempAddressType config.networking.tempAddresses; }
          ]
        )) { };

        # nixos/modules/security/polkit.nix
        security.polkit = {
          enable = bool false;
          extraConfig = lines;
        };
      };

      config = {
        assertions =
          # users-groups.nix
          lib.concatMap (u: [
            {
              assertion = builtins.match "[a-zA-Z0-9_.][a-zA-Z0-9_.-]*" u.name != null;
              message = "The username \"${u.name}\" is not valid, it does not match the regex \"[a-zA-Z0-9_.][a-zA-Z0-9_.-]*\".";
            }
            {
              assertion = lib.xor (u.isSystemUser || (u.uid != null && u.uid < 1000 && !u.isNormalUser)) u.isNormalUser;
              message = "Exactly one of users.users.${u.name}.isSystemUser and users.users.${u.name}.isNormalUser must be set.";
            }
            {
              assertion = u.group != "";
              message = "users.users.${u.name}.group is unset.";
            }
          ]) users
          ++ [
            {
              assertion = lib.all (u: u.group == "" || builtins.elem u.group groupNames) users;
              message = "The following users have a primary group that is undefined: ${
                lib.concatMapStringsSep " " (u: u.name) (lib.filter (u: u.group != "" && !builtins.elem u.group groupNames) users)
              }";
            }
          ]
          # ssh.nix
          ++ lib.mapAttrsToList (name: h: {
            assertion = (h.publicKey == null) != (h.publicKeyFile == null);
            message = "knownHost ${name} must contain either a publicKey or publicKeyFile";
          }) config.programs.ssh.knownHosts
          # network-interfaces.nix
          ++ map (i: {
            assertion = builtins.stringLength i.name < 16;
            message = "The name of networking.interfaces.\"${i.name}\" is too long, it needs to be less than 16 characters.";
          }) interfaces
          ++ map (i: {
            assertion = i.tempAddress != "disabled" -> config.networking.enableIPv6;
            message = "Temporary addresses are only needed when IPv6 is enabled.";
          }) interfaces
          ++ [
            {
              assertion =
                config.networking.hostId == null
                || (builtins.stringLength config.networking.hostId == 8 && isHex config.networking.hostId);
              message = "Invalid value given to the networking.hostId option.";
            }
          ]
          # zfs.nix, when ZFS is enabled
          ++ lib.optionals config.boot.zfs.enabled [
            {
              assertion = config.networking.hostId != null;
              message = "ZFS requires networking.hostId to be set";
            }
            {
              assertion = !builtins.elem "" zfsPools;
              message = "Automatic pool detection found an empty pool name, which can't be used.";
            }
          ];

        # tmpfiles.nix: an argument that looks escaped is escaped again.
        warnings = lib.concatLists (
          lib.mapAttrsToList (
            file: paths:
            lib.concatLists (
              lib.mapAttrsToList (
                path: entries:
                lib.concatLists (
                  lib.mapAttrsToList (
                    type: entry:
                    lib.optional (builtins.match ''.*\\([nrt]|x[0-9A-Fa-f]{2}).*'' entry.argument != null)
                      "The argument option of ${file}.${type}.${path} appears to contain escape sequences, which will be escaped again."
                  ) entries
                )
              ) paths
            )
          ) config.systemd.tmpfiles.settings
        );
      };
    };
}
