# Evaluates modules/controller.nix and modules/agent.nix with lib.evalModules against the stubs in
# ./stubs.nix, for example configurations and for one bad input per assertion, and returns plain
# data for tests/unit/nix-modules.test.ts:
#
#   nix-instantiate --eval --strict --json tests/nix/eval.nix --argstr nixpkgsLib "$NIXPKGS_LIB"
#
# nixpkgsLib: nixpkgs' lib directory (the one with default.nix), or a checkout containing lib/.
{
  nixpkgsLib ? builtins.getEnv "NIXPKGS_LIB",
}:

let
  libDir =
    if nixpkgsLib == "" then
      throw "tests/nix/eval.nix: set NIXPKGS_LIB (or --argstr nixpkgsLib) to a nixpkgs lib directory"
    else if builtins.pathExists "${nixpkgsLib}/lib/default.nix" then
      "${nixpkgsLib}/lib"
    else
      nixpkgsLib;
  lib = import libDir;
  stubs = import ./stubs.nix { inherit lib; };
  examples = import ./examples.nix;

  # What nix/tests/module-eval.nix's `base` gives every example on a real system and the stubs check:
  # ZFS (enabled by the examples) asserts a host ID.
  base = {
    networking.hostId = "8425e349";
  };

  evalWith =
    modules:
    (lib.evalModules {
      modules = [
        stubs.module
        base
        ../../modules/controller.nix
        ../../modules/agent.nix
        { _module.args.pkgs = stubs.pkgs; }
      ]
      ++ modules;
    }).config;

  # Stub derivations become { outPath, name, text/value/script } so tests can read what they hold.
  plain =
    v:
    if lib.isDerivation v then
      lib.filterAttrs (_: x: x != null) {
        inherit (v) name;
        # not `outPath`: toJSON would turn the whole set into that string
        path = v.outPath;
        text = v.text or null;
        value = v.value or null;
        script = v.script or null;
      }
    else if builtins.isAttrs v then
      lib.mapAttrs (_: plain) v
    else if builtins.isList v then
      map plain v
    else
      v;

  failed = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  # startLimitBurst/startLimitIntervalSec have no default (reading an unset one fails, as in NixOS): a unit
  # shows them as unitConfig.StartLimit*= when set.
  withoutUnset = lib.mapAttrs (_: u: removeAttrs u [ "startLimitBurst" "startLimitIntervalSec" ]);
  hozoUnits = config: withoutUnset (lib.filterAttrs (n: _: lib.hasPrefix "hozo" n) config.systemd.services);
  timersOf = config: withoutUnset config.systemd.timers;

  controllerView = config: {
    services = plain (hozoUnits config);
    timers = plain (timersOf config);
    etc = plain config.environment.etc;
    checks = plain config.system.checks;
    knownHosts = config.programs.ssh.knownHosts;
    tmpfiles = config.systemd.tmpfiles.settings;
    logrotate = config.services.logrotate.settings;
    nodeExporterFlags = config.services.prometheus.exporters.node.extraFlags;
    sanoid = {
      inherit (config.services.sanoid) enable templates datasets;
    };
    users = config.users.users;
    groups = lib.attrNames config.users.groups;
    renderedConfig = config.services.hozo.controller.renderedConfig;
    renderedJobConfigs = config.services.hozo.controller.renderedJobConfigs;
    failedAssertions = failed config;
  };

  agentView = config: {
    services = plain (hozoUnits config);
    timers = plain (timersOf config);
    etc = plain config.environment.etc;
    users = config.users.users;
    groups = lib.attrNames config.users.groups;
    tmpfiles = config.systemd.tmpfiles.settings;
    polkit = config.security.polkit;
    extraPools = config.boot.zfs.extraPools;
    interfaces = config.networking.interfaces;
    systemPackages = map (p: p.name) config.environment.systemPackages;
    opensshEnabled = config.services.openssh.enable;
    checks = plain config.system.checks;
    renderedConfig = config.services.hozo.agent.renderedConfig;
    failedAssertions = failed config;
  };

  # The flake's outputs with a stand-in nixpkgs (lib is real): the wiring, not the builds.
  flake =
    let
      definition = import ../../flake.nix;
      fakePkgs = stubs.pkgs // {
        callPackage = fn: _args: stubs.stubDrv "hozo-built-by-flake" { builtFrom = toString fn; };
      };
      nixpkgs = {
        inherit lib;
        legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: fakePkgs);
      };
      outputs = definition.outputs {
        self = outputs;
        inherit nixpkgs;
      };
      evalFlakeModule =
        modules:
        (lib.evalModules {
          modules = [
            stubs.module
            base
            { _module.args.pkgs = stubs.pkgs; }
          ]
          ++ modules;
        }).config;
      viaDefault = evalFlakeModule [
        outputs.nixosModules.default
        examples.controller
        examples.agent
      ];
      viaAgent = evalFlakeModule [
        outputs.nixosModules.agent
        examples.agent
      ];
      # A user importing one module and the default one too (each brings the same wrapper).
      viaBoth = evalFlakeModule [
        outputs.nixosModules.controller
        outputs.nixosModules.agent
        outputs.nixosModules.default
        examples.controller
        examples.agent
      ];
      overridden = evalFlakeModule [
        outputs.nixosModules.controller
        examples.controller
        { services.hozo.controller.package = stubs.stubDrv "my-hozo" { }; }
      ];
    in
    {
      inputs = lib.mapAttrs (_: i: i.url) definition.inputs;
      packages = lib.mapAttrs (_: lib.attrNames) outputs.packages;
      defaultIsHozo = outputs.packages.x86_64-linux.default.name;
      nixosModules = lib.attrNames outputs.nixosModules;
      checks = lib.mapAttrs (_: lib.attrNames) outputs.checks;
      devShells = lib.attrNames outputs.devShells;
      formatter = lib.attrNames outputs.formatter;
      overlay = (outputs.overlays.default fakePkgs fakePkgs).hozo.builtFrom;
      controllerPackage = viaDefault.services.hozo.controller.package.builtFrom;
      agentPackage = viaAgent.services.hozo.agent.package.builtFrom;
      bothPackages = [
        viaBoth.services.hozo.controller.package.builtFrom
        viaBoth.services.hozo.agent.package.builtFrom
      ];
      overriddenPackage = overridden.services.hozo.controller.package.name;
      failedAssertions = failed viaDefault;
    };

  # nix/package.nix with a stand-in buildNpmPackage that returns its arguments: the phases, not the build.
  packageWith =
    args:
    import ../../nix/package.nix (
      {
        inherit lib;
        buildNpmPackage = args: args;
        importNpmLock = {
          __functor = _: _args: stubs.stubDrv "npm-deps" { };
          npmConfigHook = stubs.stubDrv "npm-config-hook" { };
        };
        nodejs = stubs.stubDrv "nodejs" { };
        makeWrapper = stubs.stubDrv "make-wrapper" { };
        installShellFiles = stubs.stubDrv "install-shell-files" { };
        openssh = stubs.stubDrv "openssh" { };
        mbuffer = stubs.pkgs.mbuffer;
        pv = stubs.stubDrv "pv" { };
        zstd = stubs.pkgs.zstd;
      }
      // args
    );
  package =
    let
      drv = packageWith { };
      hashed = packageWith { npmDepsHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; };
    in
    {
      inherit (drv)
        pname
        version
        postInstall
        doInstallCheck
        installCheckPhase
        npmRebuildFlags
        makeWrapperArgs
        ;
      inherit (drv.passthru) sourceRoots;
      mainProgram = drv.meta.mainProgram;
      usesConfigHook = drv ? npmConfigHook;
      # With a hash: buildNpmPackage's own fetchNpmDeps, no importNpmLock.
      hashed = {
        inherit (hashed) npmDepsHash;
        npmDeps = hashed ? npmDeps;
        npmConfigHook = hashed ? npmConfigHook;
      };
    };

in
{
  controller = controllerView (evalWith [ examples.controller ]);
  # Without node-exporter there is no metrics directory unless one is set.
  controllerPlain = controllerView (evalWith [ examples.controllerMinimal ]);
  agent = agentView (evalWith [ examples.agent ]);
  agentNoIdle = agentView (evalWith [
    examples.agent
    {
      services.hozo.agent.idlePoweroffMinutes = lib.mkForce null;
      services.hozo.agent.pruneSchedule = lib.mkForce null;
    }
  ]);
  # Every default of the agent module.
  agentMinimal = agentView (evalWith [ examples.agentMinimal ]);
  # Two controllers, each with its own section (roots, keys, limits).
  agentSections = agentView (evalWith [
    examples.agentMinimal
    {
      services.hozo.agent.authorizedKeys = lib.mkForce [ ];
      services.hozo.agent.controllers = {
        alice = {
          roots = [ "backup/alice" ];
          authorizedKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice hozo@alice" ];
        };
        bob = {
          roots = [ "backup/bob" ];
          authorizedKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBob hozo@bob" ];
          maxLeases = 2;
          maxReceives = 1;
          quota = "500G";
        };
      };
    }
  ]);
  # A state directory outside /var/lib: no StateDirectory=, the paths are made writable instead.
  agentElsewhere = agentView (evalWith [
    examples.agentMinimal
    { services.hozo.agent.stateDirectory = "/srv/hozo-agent"; }
  ]);
  # Both modules on one machine must merge (one user `hozo`).
  both = {
    failedAssertions = failed (evalWith [
      examples.controller
      examples.agent
    ]);
    user = (evalWith [
      examples.controller
      examples.agent
    ]).users.users.hozo;
  };

  controllerAssertions = lib.mapAttrs (
    _: bad: failed (evalWith [
      examples.controller
      bad
    ])
  ) examples.controllerBad;
  agentAssertions = lib.mapAttrs (
    _: bad: failed (evalWith [
      examples.agent
      bad
    ])
  ) examples.agentBad;

  inherit flake package;
}
