# For configurations without flakes: nixpkgs.overlays = [ (import ./path/to/hozo/nix/overlay.nix) ];
final: _prev: {
  hozo = final.callPackage ./package.nix { };
}
