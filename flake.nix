{
  description = "Hōzō: off-site ZFS replication to a sleeping backup box";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # The modules are plain NixOS modules; the flake only supplies the package default. The wrapper has a key (and
      # a file for error messages), so the module system takes it once however often it is imported: a user who
      # imports nixosModules.controller beside nixosModules.default would otherwise define the package twice.
      withPackage = module: optionPath: {
        key = "${toString ./flake.nix}#nixosModules.${lib.last optionPath}";
        _file = "${toString ./flake.nix}#nixosModules.${lib.last optionPath}";
        imports = [
          (
            { lib, pkgs, ... }:
            {
              imports = [ module ];
              config = lib.setAttrByPath (optionPath ++ [ "package" ]) (
                lib.mkDefault (
                  self.packages.${pkgs.stdenv.hostPlatform.system}.hozo or (pkgs.callPackage ./nix/package.nix { })
                )
              );
            }
          )
        ];
      };
    in
    {
      overlays.default = import ./nix/overlay.nix;

      packages = forAllSystems (pkgs: {
        hozo = pkgs.callPackage ./nix/package.nix { };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.hozo;
      });

      nixosModules = {
        controller = withPackage ./modules/controller.nix [
          "services"
          "hozo"
          "controller"
        ];
        agent = withPackage ./modules/agent.nix [
          "services"
          "hozo"
          "agent"
        ];
        default = {
          imports = [
            self.nixosModules.controller
            self.nixosModules.agent
          ];
        };
      };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.nodejs # the package's node
            pkgs.typescript-language-server
            pkgs.nixfmt
            pkgs.openssh
            pkgs.mbuffer
            pkgs.pv
            pkgs.zstd
          ];
        };
      });

      # nixfmt is the RFC 166 formatter since nixpkgs 25.05 (nixfmt-rfc-style is its deprecated alias).
      formatter = forAllSystems (pkgs: pkgs.nixfmt);

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.hozo;
        module-eval = import ./nix/tests/module-eval.nix { inherit pkgs nixpkgs self; };
        vm = import ./nix/tests/vm.nix { inherit pkgs self; };
      });
    };
}
