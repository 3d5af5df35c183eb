# The hozo package: both binaries (hozo, hozo-agent) built from this repository with
# buildNpmPackage. Dependencies come from package-lock.json through importNpmLock (every entry has
# `resolved` and `integrity`), so there is no dependency hash to keep up to date; where
# import-from-derivation is not allowed (nixpkgs), pass npmDepsHash instead and the lock is fetched
# by fetchNpmDeps (docs/nixos.md, "The package", says how the hash is made).
{
  lib,
  buildNpmPackage,
  importNpmLock,
  nodejs,
  makeWrapper,
  installShellFiles,
  openssh,
  mbuffer,
  pv,
  zstd,
  # "sha256-…" of `prefetch-npm-deps package-lock.json`: fetchNpmDeps instead of importNpmLock.
  npmDepsHash ? null,
}:

let
  packageJson = lib.importJSON ../package.json;

  # What `npm run build` reads (tsc -p tsconfig.json, the man pages from src/man, the bundles of
  # scripts/bundle.mjs); nothing else enters the build.
  sourceRoots = [
    ../package.json
    ../package-lock.json
    ../tsconfig.json
    ../src
    ../agent
    ../scripts/bundle.mjs
  ];
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions sourceRoots;
  };

  binNames = lib.attrNames packageJson.bin;
  # Both programs are promised by the modules (hozo on the controller, hozo-agent on the box).
  missingBins = lib.subtractLists binNames [
    "hozo"
    "hozo-agent"
  ];

  # The wrapper supplies the transport and stream tools; the ZFS userland comes from the
  # service's PATH (config.boot.zfs.package), so it always matches the loaded kernel module.
  runtimePath = lib.makeBinPath [
    openssh
    mbuffer
    pv
    zstd
  ];
in
assert lib.assertMsg (missingBins == [ ])
  "hozo: package.json's \"bin\" lacks ${lib.concatStringsSep ", " missingBins}";
buildNpmPackage (
  (
    if npmDepsHash == null then
      {
        npmDeps = importNpmLock { npmRoot = src; };
        npmConfigHook = importNpmLock.npmConfigHook;
      }
    else
      { inherit npmDepsHash; }
  )
  // {
    pname = packageJson.name;
    inherit (packageJson) version;
    inherit src nodejs;

    nativeBuildInputs = [
      makeWrapper
      installShellFiles
    ];

    # npm's install hook makes a wrapper for both entries of package.json's "bin" (hozo -> dist/bin/hozo/hozo.js,
    # hozo-agent -> dist/bin/agent/hozo-agent.js, the bundles of scripts/bundle.mjs) in $out/bin, with these arguments:
    # the tools on PATH.
    makeWrapperArgs = [
      "--prefix"
      "PATH"
      ":"
      runtimePath
    ];
    postInstall = ''
      for prog in ${lib.escapeShellArgs binNames}; do
        if [ ! -x "$out/bin/$prog" ]; then
          echo "hozo: $out/bin/$prog is missing: is it still in package.json's \"bin\"?" >&2
          exit 1
        fi
      done
      # hozo(1), hozo-agent(8), hozo.conf(5): written by `npm run build` from the program and the config schema.
      installManPage $out/lib/node_modules/${packageJson.name}/dist/man/*
    '';

    doInstallCheck = true;
    installCheckPhase = ''
      runHook preInstallCheck
      $out/bin/hozo --help >/dev/null
      $out/bin/hozo-agent --help >/dev/null
      runHook postInstallCheck
    '';

    # Install scripts are not needed by anything here, and an optional native build of a dependency (ssh2's
    # cpu-features) would fail `npm rebuild` in the sandbox.
    npmRebuildFlags = [ "--ignore-scripts" ];

    passthru = {
      # Repository-relative files and directories the build sees (tests/unit/nix-modules.test.ts checks that the
      # build script's files are among them).
      sourceRoots = map (f: lib.removePrefix "${toString ../.}/" (toString f)) sourceRoots;
    };

    meta = {
      description = "Off-site ZFS replication to a sleeping backup box: wake, replicate, verify, shut down";
      license = lib.licenses.mit;
      mainProgram = "hozo";
      # None yet: the package is not in nixpkgs; a submission adds its maintainers here.
      maintainers = [ ];
      platforms = lib.platforms.linux;
    };
  }
)
