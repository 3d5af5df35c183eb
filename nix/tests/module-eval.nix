# checks.<system>.module-eval: the modules evaluated inside a real NixOS configuration (not the
# stubs of tests/nix/stubs.nix). The example configurations from tests/nix/examples.nix must
# evaluate with no failed assertion; each bad example must fail with one of ours. The derivation
# builds the generated unit files and the example's `hozo config check` (system.checks).
{
  pkgs,
  nixpkgs,
  self,
}:

let
  inherit (pkgs) lib;
  examples = import ../../tests/nix/examples.nix;

  base = {
    nixpkgs.hostPlatform = pkgs.stdenv.hostPlatform.system;
    boot.loader.grub.enable = false;
    fileSystems."/" = {
      device = "/dev/disk/by-label/nixos";
      fsType = "ext4";
    };
    boot.supportedFilesystems = [ "zfs" ];
    networking.hostId = "8425e349";
    system.stateVersion = "25.11";
  };

  evalSystem =
    modules:
    (nixpkgs.lib.nixosSystem {
      modules = [
        base
        self.nixosModules.default
      ]
      ++ modules;
    }).config;

  failed = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  good = {
    controller = evalSystem [ examples.controller ];
    agent = evalSystem [ examples.agent ];
    both = evalSystem [
      examples.controller
      examples.agent
    ];
  };

  goodOk = lib.mapAttrs (
    name: config:
    let
      f = failed config;
    in
    f == [ ] || throw "module-eval: example ${name} fails its assertions:\n  ${lib.concatStringsSep "\n  " f}"
  ) good;

  badOk =
    lib.mapAttrs (
      name: bad:
      lib.any (lib.hasPrefix "services.hozo.controller") (failed (evalSystem [
        examples.controller
        bad
      ]))
      || throw "module-eval: bad example controllerBad.${name} did not trigger a services.hozo.controller assertion"
    ) examples.controllerBad
    // lib.mapAttrs' (
      name: bad:
      lib.nameValuePair "agent-${name}" (
        lib.any (lib.hasPrefix "services.hozo.agent") (failed (evalSystem [
          examples.agent
          bad
        ]))
        || throw "module-eval: bad example agentBad.${name} did not trigger a services.hozo.agent assertion"
      )
    ) examples.agentBad;

  unitsOf =
    config: lib.filterAttrs (n: _: lib.hasPrefix "hozo" n) config.systemd.units;
  units = lib.mapAttrsToList (n: u: "${u.unit}/${n}") (
    unitsOf good.controller // unitsOf good.agent
  );
in
assert lib.all lib.id (lib.attrValues goodOk ++ lib.attrValues badOk);
pkgs.runCommand "hozo-module-eval"
  {
    # Building this runs `hozo config check` on the example's rendered files, and
    # `hozo-agent check-config` on the agent's.
    checks = good.controller.system.checks;
    agentChecks = good.agent.system.checks;
    controllerConfig = good.controller.environment.etc."hozo/config.json".source;
    agentConfig = good.agent.environment.etc."hozo-agent/config.json".source;
    authorizedKeys = lib.concatStringsSep "\n" good.agent.users.users.hozo.openssh.authorizedKeys.keys;
    polkitRules = good.agent.security.polkit.extraConfig;
    passAsFile = [
      "authorizedKeys"
      "polkitRules"
    ];
  }
  ''
    mkdir -p $out/units
    ${lib.concatMapStringsSep "\n" (u: "cp ${u} $out/units/") units}
    cp $controllerConfig $out/config.json
    cp $agentConfig $out/agent-config.json
    cp $authorizedKeysPath $out/authorized_keys
    cp $polkitRulesPath $out/polkit.rules
    grep -q '^ExecStart=.*/bin/hozo run offsite$' $out/units/hozo-offsite.service
    grep -q '^LoadCredential=ssh-key-box:/run/secrets/hozo/box-ssh-key$' $out/units/hozo-offsite.service
    grep -q '^LoadCredential=notify-0-token:/run/secrets/hozo/ntfy-token$' $out/units/hozo-offsite.service
    grep -q '^LoadCredential=ssh-key-relay:/run/secrets/hozo/relay-ssh-key$' $out/units/hozo-far.service
    grep -q '^StateDirectory=hozo-agent$' $out/units/hozo-agent-idle.service
    grep -q '^Environment="SSH_ORIGINAL_COMMAND=prune"$' $out/units/hozo-agent-prune.service
    grep -q '^OnCalendar=\*-\*-\* 05:00:00$' $out/units/hozo-agent-prune.timer
    grep -Eq '"exportOnShutdown": ?false' $out/agent-config.json
    grep -q '^OnCalendar=\*-\*-\* 02:30:00$' $out/units/hozo-offsite.timer
    grep -q '^command=".*/bin/hozo-agent serve --config /etc/hozo-agent/config.json",restrict' $out/authorized_keys
  ''
