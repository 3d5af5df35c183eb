# Stand-ins for the parts of NixOS and Nixpkgs that modules/{controller,agent}.nix touch, so the
# modules can be evaluated with nothing but nixpkgs' lib (lib.evalModules). The option types
# follow NixOS where merging matters (lists concatenate, priorities apply, unit options merge like
# systemd's); everything else is kept loose. Written for these tests, not taken from NixOS.
{ lib }:

let
  inherit (lib) mkOption types;

  stubDrv =
    name: attrs:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
      meta = { };
    }
    // attrs;

  # Like NixOS' unit option: lists from several definitions concatenate, scalars must agree.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    check = v: builtins.isBool v || builtins.isInt v || builtins.isString v || builtins.isList v || lib.isDerivation v || builtins.isPath v;
    merge =
      loc: defs:
      if builtins.any (d: builtins.isList d.value) defs then
        lib.concatMap (d: lib.toList d.value) defs
      else
        lib.mergeEqualOption loc defs;
  };

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

  strList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };

  serviceModule = {
    options = {
      description = mkOption {
        type = types.str;
        default = "";
      };
      after = strList;
      before = strList;
      wants = strList;
      requires = strList;
      bindsTo = strList;
      wantedBy = strList;
      restartIfChanged = mkOption {
        type = types.bool;
        default = true;
      };
      path = mkOption {
        type = types.listOf (types.either types.package types.str);
        default = [ ];
      };
      environment = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      script = mkOption {
        type = types.lines;
        default = "";
      };
      preStop = mkOption {
        type = types.lines;
        default = "";
      };
      startLimitBurst = mkOption {
        type = types.nullOr types.int;
        default = null;
      };
      startLimitIntervalSec = mkOption {
        type = types.nullOr types.int;
        default = null;
      };
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      unitConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
    };
  };

  timerModule = {
    options = {
      description = mkOption {
        type = types.str;
        default = "";
      };
      wantedBy = strList;
      timerConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
    };
  };

  sanoidSettings = types.attrsOf (
    types.nullOr (
      types.oneOf [
        types.str
        types.int
        types.bool
        (types.listOf types.str)
      ]
    )
  );
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

  # Option declarations for what the modules set outside services.hozo.
  module =
    { pkgs, config, ... }:
    {
      options = {
        assertions = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
        warnings = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };

        users.users = mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule {
              options = {
                isSystemUser = mkOption {
                  type = types.bool;
                  default = false;
                };
                group = mkOption {
                  type = types.str;
                  default = "";
                };
                home = mkOption {
                  type = types.str;
                  default = "/var/empty";
                };
                description = mkOption {
                  type = types.str;
                  default = "";
                };
                useDefaultShell = mkOption {
                  type = types.bool;
                  default = false;
                };
                openssh.authorizedKeys.keys = strList;
              };
            }
          );
        };
        users.groups = mkOption {
          type = types.attrsOf (types.submodule { });
          default = { };
        };

        environment.systemPackages = mkOption {
          type = types.listOf types.package;
          default = [ ];
        };
        environment.etc = mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule {
              options = {
                source = mkOption { type = types.either types.package types.str; };
                mode = mkOption {
                  type = types.str;
                  default = "symlink";
                };
              };
            }
          );
        };

        system.checks = mkOption {
          type = types.listOf types.package;
          default = [ ];
        };

        programs.ssh.knownHosts = mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule {
              options = {
                hostNames = strList;
                publicKey = mkOption { type = types.nullOr types.str; };
              };
            }
          );
        };

        systemd.package = mkOption {
          type = types.package;
          default = pkgs.systemdStub or (stubDrv "systemd" { });
        };
        systemd.services = mkOption {
          type = types.attrsOf (types.submodule serviceModule);
          default = { };
        };
        systemd.timers = mkOption {
          type = types.attrsOf (types.submodule timerModule);
          default = { };
        };
        systemd.tmpfiles.settings = mkOption {
          type = types.attrsOf (types.attrsOf (types.attrsOf (types.attrsOf types.str)));
          default = { };
        };

        services.logrotate.settings = mkOption {
          type = types.attrsOf (types.attrsOf types.anything);
          default = { };
        };
        services.prometheus.exporters.node = {
          enable = mkOption {
            type = types.bool;
            default = false;
          };
          extraFlags = strList;
        };
        services.sanoid = {
          enable = mkOption {
            type = types.bool;
            default = false;
          };
          templates = mkOption {
            type = types.attrsOf (types.submodule { freeformType = sanoidSettings; });
            default = { };
          };
          datasets = mkOption {
            default = { };
            type = types.attrsOf (
              types.submodule {
                freeformType = sanoidSettings;
                options = {
                  use_template = strList;
                  recursive = mkOption {
                    type = types.either types.bool (types.enum [ "zfs" ]);
                    default = false;
                  };
                };
              }
            );
          };
        };
        services.openssh.enable = mkOption {
          type = types.bool;
          default = false;
        };

        boot.zfs.package = mkOption {
          type = types.package;
          default = stubDrv "zfs-user-2.3.4" { };
        };
        # As nixos/modules/tasks/filesystems.nix and zfs.nix declare them: a list of names is coerced to an attrset;
        # boot.zfs.enabled is read-only, true when ZFS is a supported filesystem of the system or the initrd.
        boot.supportedFilesystems = mkOption {
          type = types.coercedTo (types.listOf types.str) (enabled: lib.genAttrs enabled (_: true)) (types.attrsOf types.bool);
          default = { };
        };
        boot.initrd.supportedFilesystems = mkOption {
          type = types.coercedTo (types.listOf types.str) (enabled: lib.genAttrs enabled (_: true)) (types.attrsOf types.bool);
          default = { };
        };
        boot.zfs.enabled = mkOption {
          readOnly = true;
          type = types.bool;
          default = config.boot.supportedFilesystems.zfs or false || config.boot.initrd.supportedFilesystems.zfs or false;
        };
        boot.zfs.extraPools = strList;

        fileSystems = mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule {
              options = {
                device = mkOption {
                  type = types.nullOr types.str;
                  default = null;
                };
                fsType = mkOption {
                  type = types.str;
                  default = "auto";
                };
              };
            }
          );
        };

        networking.interfaces = mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule {
              options.wakeOnLan.enable = mkOption {
                type = types.bool;
                default = false;
              };
            }
          );
        };

        security.polkit = {
          enable = mkOption {
            type = types.bool;
            default = false;
          };
          extraConfig = mkOption {
            type = types.lines;
            default = "";
          };
        };
      };
    };
}
